'use strict';
// Seeded PRNG for tests. Every run draws a fresh seed (RNNKIT_TEST_SEED=<n> replays one) so inputs
// differ between runs, and a failing test can print the seed that reproduces it.
const crypto = require('crypto');

function freshSeed() {
  if (process.env.RNNKIT_TEST_SEED) return Number(process.env.RNNKIT_TEST_SEED) >>> 0;
  return crypto.randomInt(0, 2 ** 32);
}

// mulberry32: tiny, fast and good enough for test data; 32-bit state equals the printed seed.
function makeRandom(seed = freshSeed()) {
  let state = seed >>> 0;
  const next = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 15), z | 1);
    z ^= z + Math.imul(z ^ (z >>> 7), z | 61);
    return ((z ^ (z >>> 14)) >>> 0) / 4294967296;
  };
  const uniform = (lo, hi) => lo + (hi - lo) * next();
  return {
    seed,
    next,
    uniform,
    // Integer in [lo, hi] inclusive.
    int: (lo, hi) => lo + Math.floor(next() * (hi - lo + 1)),
    array: (n, lo = -1, hi = 1) => {
      const out = new Float64Array(n);
      for (let k = 0; k < n; k++) out[k] = uniform(lo, hi);
      return out;
    },
    shuffle: (items) => {
      for (let k = items.length - 1; k > 0; k--) {
        const j = Math.floor(next() * (k + 1));
        [items[k], items[j]] = [items[j], items[k]];
      }
      return items;
    },
  };
}

module.exports = { makeRandom, freshSeed };
