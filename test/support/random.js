'use strict';
// Seeded random data for tests (the generator is test/reference/random.js). One run seed per
// mocha process (RNNKIT_TEST_SEED=<n> replays it); each test draws from its own stream derived
// from that seed and its title, so one failing test replays alone with the seed and --grep. A
// failing test prints the seed once.
const { makeRandom, freshSeed } = require('../reference/random');

const runSeed = freshSeed();
let hooked = false;

/** Registers (once per process) the root hook that prints the run seed after a failed test. */
function printSeedOnFailure() {
  if (hooked || typeof afterEach !== 'function') return;
  hooked = true;
  afterEach(function printSeed() {
    if (this.currentTest && this.currentTest.state === 'failed') console.log(`    reproduce with RNNKIT_TEST_SEED=${runSeed}`);
  });
}

/** The generator of the test titled `title`, derived from the run seed. */
function randomFor(title) {
  let h = runSeed;
  for (const ch of title) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return makeRandom(h);
}

/** n float32 values uniform in [lo, hi) drawn from `rng`. */
function randomF32(rng, n, lo = -1, hi = 1) {
  return Float32Array.from(rng.array(n, lo, hi));
}

/** n float32 NaNs: an output buffer whose unwritten elements a check will catch. */
const poisoned = (n) => new Float32Array(n).fill(NaN);

printSeedOnFailure();

module.exports = { runSeed, randomFor, randomF32, poisoned, makeRandom, freshSeed };
