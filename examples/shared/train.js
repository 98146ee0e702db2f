'use strict';
// The examples' training pieces: Adam with a warm-up and cosine learning rate, one optimizer step
// after a loss, and the minibatch loop of the dataset examples (seeded epochs, a progress bar,
// held-out evaluations spread over the run).
const rnnkit = require('../..');
const { Progress } = require('./progress');
const { shuffled } = require('./data');

// Adam at `lr`, warmed up from lr/10 over the first 5% of `steps`, then cosine down to lr/10.
function adamWithWarmup(parameters, { lr, steps }) {
  const optimizer = new rnnkit.Adam(parameters, { lr });
  const warmup = Math.max(1, Math.round(steps / 20));
  const scheduler = new rnnkit.LinearWarmup(optimizer, {
    warmupSteps: warmup, startFactor: 0.1,
    then: new rnnkit.CosineAnnealingLR(null, { tMax: Math.max(1, steps - warmup), etaMin: lr / 10 }),
  });
  return { optimizer, scheduler };
}

// Backward of `loss` (a scalar tensor), the gradients clipped to norm `clip`, one optimizer and
// schedule step, gradients zeroed. Returns the loss value.
async function optimizerStep(model, loss, { optimizer, scheduler }, clip) {
  await loss.backward();
  await rnnkit.clipGradNorm(model.parameters(), clip);
  await optimizer.step();
  optimizer.zeroGrad();
  scheduler.step();
  return loss.item();
}

/**
 * Trains `model` for `steps` minibatches of `batch` of the `count` training examples, in epochs
 * of a fresh shuffle from `rng`. `lossOf(indices)` returns the loss of those examples (a scalar
 * tensor); `evaluate()` the held-out figures ({ loss, ... }), taken `evals` times. Returns the
 * step losses, the evaluations ({ step, loss, ... }) and the training seconds.
 */
async function fit({ model, steps, batch, count, rng, lr, clip, lossOf, evaluate, evals, unit }) {
  const schedule = adamWithWarmup(model.parameters(), { lr, steps });
  const bar = new Progress(steps, batch, { unit });
  const every = Math.max(1, Math.round(steps / evals));
  const results = [];
  let epoch = [];
  for (let step = 1; step <= steps; step++) {
    if (epoch.length < batch) epoch = epoch.concat(shuffled(count, rng));
    bar.update(await optimizerStep(model, await lossOf(epoch.splice(0, batch)), schedule, clip));
    if (step % every === 0 || step === steps) results.push({ step, ...(await evaluate()) });
  }
  return { losses: bar.losses, evals: results, seconds: bar.seconds };
}

module.exports = { adamWithWarmup, optimizerStep, fit };
