'use strict';
// Fuzzing the native boundary: every exported native function called with random and hostile
// arguments — wrong types, wrong lengths, negative/huge/NaN sizes, detached or shared buffers,
// disposed device buffers (the generator of test/fuzz/hostile.js, shared with the public-API
// fuzz). The process must never crash, and every failure must be an RnnkitError with a code.
// RNNKIT_FUZZ_CALLS sets the number of calls (default 100000).
const { RnnkitError } = rnnkit;
const { native } = require('../dist/native');
const { makeRandom } = require('./reference/random');
const { makeHostile } = require('./fuzz/hostile');

// Machine probes and pool resizing do real (slow) work on valid sizes: covered in 02.errors.
const skip = new Set(['init', 'fmaPeak', 'copyBandwidth', 'setNumThreads']);

describe('fuzzing the native boundary', function () {
  this.timeout(600000);
  const calls = Number(process.env.RNNKIT_FUZZ_CALLS || 100000);
  const rng = makeRandom();

  after(() => {
    rnnkit.setNumThreads(0);
    native().setIsa(rnnkit.backendInfo().detectedIsa);
  });

  it(`survives ${calls} hostile calls (seed ${rng.seed})`, async () => {
    const b = native();
    const names = Object.keys(b).filter((k) => typeof b[k] === 'function' && !skip.has(k)).sort();
    const arg = makeHostile(rng).value;
    const pending = [];
    let thrown = 0;
    for (let i = 0; i < calls; i++) {
      const name = names[i % names.length];
      const n = rng.int(0, 14);
      const args = [];
      for (let j = 0; j < n; j++) args.push(arg());
      try {
        const r = name === 'DeviceBuffer' ? new b[name](...args) : b[name](...args);
        if (r && typeof r.then === 'function') {
          pending.push(r.then(() => null, (err) => err));
        }
        if (r && typeof r.dispose === 'function') r.dispose();
      } catch (err) {
        thrown++;
        if (!(err instanceof RnnkitError)) throw new Error(`${name} threw a ${err && err.name}: ${err && err.message}`);
        expect(err.code).to.match(/^ERR_RNNKIT_/);
      }
      if (pending.length >= 256) {
        for (const e of await Promise.all(pending.splice(0))) {
          if (e !== null) expect(e, 'async rejection').to.be.instanceOf(RnnkitError);
        }
      }
    }
    for (const e of await Promise.all(pending)) if (e !== null) expect(e).to.be.instanceOf(RnnkitError);
    expect(thrown).to.be.greaterThan(calls / 2);
  });
});
