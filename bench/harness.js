'use strict';
// Shared benchmark machinery: warm-up and repeated timing with medians and spread, the machine
// limits measured in the same run, tables with ratios, and JSON + SVG results under
// bench/results/ (ignored by git). Benchmarks never fail the build: a missing peer is reported
// with the line that installs it.
const fs = require('fs');
const os = require('os');
const path = require('path');

// RNNKIT_BENCH_RESULTS redirects the output (the smoke test writes to a temporary folder).
const defaultResultsDir = path.join(__dirname, 'results');

function nowMs() {
  return Number(process.hrtime.bigint()) / 1e6;
}

/**
 * Times fn (sync or async) after `warmup` calls: `repeats` samples, each at least `minMs` long
 * (calls are batched when one is shorter). Returns per-call milliseconds: { median, min, max,
 * spread = (max - min) / median, samples }. With `budgetMs`, a first call longer than the budget
 * is the only sample (marked budgetExceeded), so a very slow peer cannot stall the suite.
 */
async function measure(fn, { warmup = 2, repeats = 7, minMs = 20, budgetMs = Infinity } = {}) {
  let batch = 1;
  const t0 = nowMs();
  await fn();
  const one = nowMs() - t0;
  if (one > budgetMs) return { ...summarize([one]), budgetExceeded: true };
  for (let i = 1; i < warmup; i++) await fn();
  if (one < minMs) batch = Math.max(1, Math.ceil(minMs / Math.max(one, 1e-3)));
  // A full collection first (bench/run.js starts each family with --expose-gc), so garbage left
  // by the previous figure (a TF.js peer makes plenty) is not collected during this one.
  if (typeof global.gc === 'function') global.gc();
  const samples = [];
  for (let r = 0; r < repeats; r++) {
    const s = nowMs();
    for (let b = 0; b < batch; b++) await fn();
    samples.push((nowMs() - s) / batch);
  }
  return summarize(samples);
}

function summarize(samples) {
  if (!samples.length) throw new Error('summarize: no samples');
  const sorted = samples.slice().sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  const median = sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
  const min = sorted[0];
  const max = sorted[sorted.length - 1];
  return { median, min, max, spread: median > 0 ? (max - min) / median : 0, samples };
}

/** FMA peak (GFLOP/s) and copy bandwidth (GB/s, read + write) measured now, with `threads`. */
function limits(binding, threads) {
  const fma = binding.fmaPeak(threads);
  const copy = binding.copyBandwidth(256 << 20, threads, 5);
  return { threads, fmaPeakGflops: fma, copyGBs: copy, load: os.loadavg()[0], cpus: os.cpus().length };
}

/** A plain-text table; columns: [{ key, title, fmt? }]. */
function formatTable(title, columns, rows) {
  const cells = tableCells(columns, rows);
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((row) => row[i].length)));
  const line = (vals) => vals.map((v, i) => (i === 0 ? v.padEnd(widths[i]) : v.padStart(widths[i]))).join('  ');
  const out = [`\n${title}`, line(columns.map((c) => c.title)), widths.map((w) => '-'.repeat(w)).join('  ')];
  for (const row of cells) out.push(line(row));
  return out.join('\n');
}

/** A timing summary from measure(): printed as "median (min–max)". */
function isSummary(v) {
  return v !== null && typeof v === 'object' && typeof v.median === 'number' && typeof v.min === 'number';
}

/** The median of a summary, or the number itself. */
function med(v) {
  return isSummary(v) ? v.median : v;
}

/** A summary without its raw samples (for tables and JSON rows; the samples stay in `samples`). */
function brief(v) {
  if (!isSummary(v)) return v;
  const out = { median: v.median, min: v.min, max: v.max, n: v.samples ? v.samples.length : 1 };
  if (v.budgetExceeded) out.budgetExceeded = true;
  return out;
}

/** require() that returns null when the module itself is absent (an optional peer); ids resolve from bench/. */
function tryRequire(id) {
  try {
    return require(id);
  } catch (err) {
    if (err && err.code === 'MODULE_NOT_FOUND' && String(err.message).includes(id)) return null;
    throw err;
  }
}

/** n seeded pseudo-random floats, uniform in [-scale/2, scale/2) (an LCG: the same inputs every run). */
function randomArray(n, seed, scale = 1) {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = scale * (s / 2 ** 32 - 0.5);
  }
  return a;
}

/** max |a - b| / max |b|: how far a result is from the reference b, relative to b's scale. */
function maxRelDiff(a, b) {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
    scale = Math.max(scale, Math.abs(b[i]));
  }
  return diff / (scale || 1);
}

/** A note on how TF.js's wasm backend runs (threads, SIMD), or null; from bench/peers/tfjs.js load(). */
function tfjsWasmNote(tf) {
  const w = tf && !tf.missing && tf.backends && tf.backends.wasm;
  if (!w || !w.ok) return null;
  return `tfjs wasm runs ${w.threads} thread(s)${w.simd ? ' with SIMD' : ' without SIMD'}${w.note ? `: ${w.note}` : ''}`;
}

/** Rows with every timing summary reduced to { median, min, max, n } (for JSON). */
function briefRows(rows) {
  return rows.map((r) => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, brief(v)])));
}

/**
 * Speed ratio of `a` over `b` from two times (or summaries): time(b) / time(a). Every ratio
 * in the suite reads the same way: > 1 means the first-named is faster.
 */
function speedup(a, b) {
  const ta = med(a);
  const tb = med(b);
  return typeof ta === 'number' && typeof tb === 'number' && ta > 0 ? tb / ta : undefined;
}

// Set by bench/run.js: { quick, backend, peers } go into every family's JSON meta.
const runInfo = {};

// Tables printed since the last save(): save() stores them with the family's JSON, so
// bench/report.js can publish exactly what the run printed.
let printed = [];

/** Cells of a table as printed (strings), for the JSON and bench/report.js. */
function tableCells(columns, rows) {
  return rows.map((r) => columns.map((c) => {
    const v = r[c.key];
    if (v === undefined || v === null) return '—';
    const f = c.fmt || String;
    if (isSummary(v)) return `${f(v.median, r)}${v.samples && v.samples.length > 1 ? ` (${f(v.min, r)}–${f(v.max, r)})` : ' (1 sample)'}`;
    return f(v, r);
  }));
}

function printTable(title, columns, rows) {
  process.stdout.write(formatTable(title, columns, rows) + '\n');
  printed.push({ title, header: columns.map((c) => c.title), rows: tableCells(columns, rows) });
}

const fmt = {
  ms: (v) => v.toFixed(v < 10 ? 3 : 1),
  num: (v) => v.toFixed(1),
  ratio: (v) => `${v.toFixed(2)}x`,
  pct: (v) => `${(100 * v).toFixed(0)}%`,
  mb: (v) => (v / 1e6).toFixed(1),
};

/**
 * A horizontal bar chart (SVG) of one metric per row, grouped by series. A timing summary is
 * drawn as its median with a min–max whisker.
 */
function svgBarChart(title, rows, { label, series, unit, subtitle }) {
  const bars = [];
  for (const r of rows) {
    for (const s of series) {
      const v = r[s.key];
      if (typeof v === 'number') bars.push({ l: `${r[label]} ${s.title}`.trim(), v, series: s });
      else if (isSummary(v)) bars.push({ l: `${r[label]} ${s.title}`.trim(), v: v.median, lo: v.min, hi: v.max, series: s });
    }
  }
  const max = Math.max(1e-9, ...bars.map((b) => (b.hi !== undefined ? b.hi : b.v)));
  const h = 22;
  const width = 940;
  const left = 330;
  const top = subtitle ? 50 : 32;
  const scale = (v) => ((width - left - 120) * v) / max;
  const colors = ['#3b7dd8', '#e07b39', '#4aa564', '#a05bc4', '#c94f4f', '#7d7d7d'];
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${top + 10 + bars.length * h}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="20" font-size="15">${escapeXml(title)} (${escapeXml(unit)})</text>`];
  if (subtitle) parts.push(`<text x="10" y="38" font-size="11" fill="#555">${escapeXml(subtitle)}</text>`);
  bars.forEach((b, i) => {
    const y = top + i * h;
    const w = scale(b.v);
    const color = colors[series.indexOf(b.series) % colors.length];
    parts.push(`<text x="10" y="${y + 14}">${escapeXml(b.l)}</text>`);
    parts.push(`<rect x="${left}" y="${y + 2}" width="${w.toFixed(1)}" height="${h - 6}" fill="${color}"/>`);
    let end = left + w;
    if (b.lo !== undefined && b.hi > b.lo) {
      const x0 = left + scale(b.lo);
      const x1 = left + scale(b.hi);
      const ym = y + h / 2 - 1;
      parts.push(`<path d="M${x0.toFixed(1)} ${ym}H${x1.toFixed(1)}M${x0.toFixed(1)} ${ym - 4}V${ym + 4}M${x1.toFixed(1)} ${ym - 4}V${ym + 4}" stroke="black" stroke-width="1"/>`);
      end = Math.max(end, x1);
    }
    parts.push(`<text x="${(end + 5).toFixed(1)}" y="${y + 14}">${b.v.toPrecision(3)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

function escapeXml(s) {
  return String(s).replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' }[c]));
}

/** Writes bench/results/<family>.json (and .svg when a chart is given). Returns the JSON path. */
function save(family, payload, chart) {
  const resultsDir = process.env.RNNKIT_BENCH_RESULTS || defaultResultsDir;
  fs.mkdirSync(resultsDir, { recursive: true });
  const file = path.join(resultsDir, `${family}.json`);
  const meta = { family, date: new Date().toISOString(), node: process.version, cpu: os.cpus()[0] && os.cpus()[0].model,
    cpus: os.cpus().length, load: os.loadavg(), ...runInfo };
  const tables = printed;
  printed = [];
  fs.writeFileSync(file, JSON.stringify({ meta, ...payload, tables }, (k, v) => (k === 'samples' ? undefined : v), 2));
  if (chart) {
    const subtitle = chart.subtitle || `${meta.cpu || ''}, ${meta.date.slice(0, 10)}${payload.noise ? `, machine ${payload.noise.verdict}` : ''}; whiskers: min–max`;
    fs.writeFileSync(path.join(resultsDir, `${family}.svg`), svgBarChart(chart.title, chart.rows, { ...chart, subtitle }));
  }
  return file;
}

// CPU time of the whole machine and of this process with its finished children, in seconds, from
// /proc (Linux). Null elsewhere.
function cpuTimes() {
  try {
    const tick = 100; // USER_HZ on Linux
    const all = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const busy = all.reduce((a, b) => a + b, 0) - all[3] - (all[4] || 0); // minus idle, iowait
    const self = fs.readFileSync('/proc/self/stat', 'utf8');
    const f = self.slice(self.lastIndexOf(')') + 2).split(' ').map(Number); // fields from 3 (state) on
    const mine = f[11] + f[12] + f[13] + f[14]; // utime stime cutime cstime (fields 14-17)
    return { busy: busy / tick, mine: mine / tick };
  } catch (err) {
    return null;
  }
}

/**
 * Watches the machine while a family runs: start() before, finish() after. It reports the load
 * average (which counts this run itself, so it is shown but not judged), the share of the CPUs
 * that OTHER processes used meanwhile (from /proc: all busy time
 * minus this process's and its children's), the FMA peak at both ends, and the worst spread of
 * the timings; and a verdict: 'quiet' or 'noisy' with its reasons. A noisy run says so in its
 * table and JSON rather than hiding it.
 */
function noiseMonitor(binding, threads) {
  const cpus = os.cpus().length;
  // The best of three probes: one probe can land both threads on one core for a moment.
  const probe = () => Math.max(binding.fmaPeak(threads), binding.fmaPeak(threads), binding.fmaPeak(threads));
  const t0 = nowMs();
  const c0 = cpuTimes();
  const load0 = os.loadavg()[0];
  const peak0 = probe();
  const peaks = [peak0];
  const spreads = [];
  return {
    fmaPeakStart: peak0,
    /** Notes the spread of one or more summaries. */
    note(...summaries) {
      for (const v of summaries) if (isSummary(v) && v.samples && v.samples.length > 1) spreads.push(v.spread);
    },
    /** Notes an FMA-peak probe taken during the run (GFLOP/s, same thread count); returns it. */
    notePeak(v) {
      if (typeof v === 'number' && v > 0) peaks.push(v);
      return v;
    },
    /** Probes the FMA peak now (best of three) and notes it. */
    probePeak() {
      return this.notePeak(probe());
    },
    finish() {
      const peak1 = probe();
      peaks.push(peak1);
      const c1 = cpuTimes();
      const seconds = (nowMs() - t0) / 1e3;
      const load1 = os.loadavg()[0];
      const others = c0 && c1 && seconds > 0 ? Math.max(0, (c1.busy - c0.busy - (c1.mine - c0.mine)) / (seconds * cpus)) : null;
      const sorted = spreads.slice().sort((a, b) => a - b);
      const medianSpread = sorted.length ? sorted[sorted.length >> 1] : null;
      const worstSpread = sorted.length ? sorted[sorted.length - 1] : null;
      const best = Math.max(...peaks);
      const worst = Math.min(...peaks);
      const reasons = [];
      if (others !== null && others > 0.1) reasons.push(`other processes used ${(100 * others).toFixed(0)}% of the ${cpus} CPUs`);
      if (worst < 0.92 * best) {
        reasons.push(`the FMA probe fell to ${worst.toFixed(0)} of ${best.toFixed(0)} GFLOP/s during the run ` +
          `(${peaks.filter((p) => p < 0.92 * best).length} of ${peaks.length} probes)`);
      }
      if (medianSpread !== null && medianSpread > 0.25) reasons.push(`median min–max spread ${(100 * medianSpread).toFixed(0)}%`);
      return {
        verdict: reasons.length ? 'noisy' : 'quiet', reasons, seconds, cpus, loadStart: load0, loadEnd: load1,
        otherProcessesShare: others, fmaPeakStart: peak0, fmaPeakEnd: peak1, fmaPeakBest: best, fmaPeakWorst: worst,
        fmaProbes: peaks.length, medianSpread, worstSpread,
      };
    },
  };
}

/** One line describing a noiseMonitor result. */
function noiseLine(n) {
  const parts = [`load ${n.loadStart.toFixed(1)} → ${n.loadEnd.toFixed(1)}`];
  if (n.otherProcessesShare !== null) parts.push(`other processes ${(100 * n.otherProcessesShare).toFixed(0)}% of the CPUs`);
  parts.push(`FMA peak ${n.fmaPeakStart.toFixed(0)} → ${n.fmaPeakEnd.toFixed(0)} GFLOP/s` +
    (n.fmaProbes > 2 ? ` (${n.fmaProbes} probes, ${n.fmaPeakWorst.toFixed(0)}–${n.fmaPeakBest.toFixed(0)})` : ''));
  if (n.medianSpread !== null) parts.push(`min–max spread median ${(100 * n.medianSpread).toFixed(0)}%, worst ${(100 * n.worstSpread).toFixed(0)}%`);
  const head = n.verdict === 'quiet' ? 'machine: quiet' : `machine: NOISY (${n.reasons.join('; ')}): absolute figures are unreliable; ratios of figures taken back to back in a row less so`;
  return `${head}\n  ${parts.join(', ')}, ${n.seconds.toFixed(0)} s`;
}

/** A note when the machine is busy enough to distort timings. */
function noiseWarning() {
  const load = os.loadavg()[0];
  const cpus = os.cpus().length;
  return load > cpus * 0.5 ? `note: load average ${load.toFixed(1)} on ${cpus} CPUs; timings are noisy` : null;
}

/**
 * The issue's targets for a family, as a table: each { case, measure, target, value } where value
 * and target are speed ratios or fractions read the suite's way (higher is better: the target is
 * the least value that passes), or { ..., value: undefined } when the run has no figure for it (a
 * peer missing). Prints the table and returns the rows with their verdicts (PASS, MISS, or
 * "no figure") for the family's JSON.
 */
function printTargets(title, targets, format = fmt.ratio) {
  const rows = targets.map((t) => {
    const has = typeof t.value === 'number' && Number.isFinite(t.value);
    const f = t.format || format;
    return {
      case: t.case, measure: t.measure, target: `≥ ${f(t.target)}${t.note ? ` (${t.note})` : ''}`,
      value: has ? f(t.value) : '—', verdict: !has ? 'no figure' : t.value >= t.target ? 'PASS' : 'MISS',
      raw: { target: t.target, value: has ? t.value : null },
    };
  });
  const pass = rows.filter((r) => r.verdict === 'PASS').length;
  const miss = rows.filter((r) => r.verdict === 'MISS').length;
  printTable(`${title}: ${pass} PASS, ${miss} MISS, ${rows.length - pass - miss} without a figure`, [
    { key: 'case', title: 'case' }, { key: 'measure', title: 'measure' }, { key: 'target', title: 'target' },
    { key: 'value', title: 'measured' }, { key: 'verdict', title: 'verdict' },
  ], rows);
  return rows.map((r) => ({ case: r.case, measure: r.measure, target: r.raw.target, value: r.raw.value, verdict: r.verdict }));
}

module.exports = {
  printTargets, measure, summarize, isSummary, med, brief, briefRows, speedup, tryRequire, randomArray, maxRelDiff, tfjsWasmNote, limits, printTable, formatTable, fmt, save, svgBarChart,
  runInfo, noiseMonitor, noiseLine, noiseWarning, cpuTimes, resultsDir: () => process.env.RNNKIT_BENCH_RESULTS || defaultResultsDir,
};
