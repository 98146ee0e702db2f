'use strict';
// The examples' progress bar on stderr: one line redrawn in place on a terminal, every tenth of
// the run otherwise (logs and CI). Each update records a step's loss; the bar shows it smoothed,
// the throughput and the time left.

function formatTime(s) {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  return `${m}:${String(Math.floor(s % 60)).padStart(2, '0')}`;
}

class Progress {
  // `itemsPerStep` of `unit` (tokens, messages, words) make one step's throughput; a bar not
  // `shown` (another rank's) only records the losses.
  constructor(steps, itemsPerStep, { unit = 'tok', shown = true } = {}) {
    Object.assign(this, { steps, itemsPerStep, unit, shown, losses: [], smooth: null, t0: Date.now() });
  }

  get seconds() {
    return (Date.now() - this.t0) / 1000;
  }

  update(loss) {
    this.losses.push(loss);
    this.smooth = this.smooth === null ? loss : 0.9 * this.smooth + 0.1 * loss;
    const steps = this.steps;
    const seconds = this.seconds;
    const step = this.losses.length;
    const width = 28;
    const done = Math.round((width * step) / steps);
    const eta = (seconds / step) * (steps - step);
    const line = `[${'#'.repeat(done)}${'.'.repeat(width - done)}] ${step}/${steps}  loss ${this.smooth.toFixed(3)}  ` +
      `${Math.round((step * this.itemsPerStep) / seconds)} ${this.unit}/s  elapsed ${formatTime(seconds)}  ETA ${formatTime(eta)}`;
    if (!this.shown) return;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}`);
    else if (step === steps || step % Math.max(1, Math.round(steps / 10)) === 0) process.stderr.write(`${line}\n`);
    if (process.stderr.isTTY && step === steps) process.stderr.write('\n');
  }
}

// Starts a stopwatch: the function it returns gives the wall-clock and CPU seconds (user + system,
// every thread of the process) since then. CPU seconds tell the cost of a run on a busy machine.
function stopwatch() {
  const wall = Date.now();
  const cpu = process.cpuUsage();
  return () => {
    const d = process.cpuUsage(cpu);
    return { wallSeconds: (Date.now() - wall) / 1000, cpuSeconds: (d.user + d.system) / 1e6 };
  };
}

module.exports = { Progress, formatTime, stopwatch };
