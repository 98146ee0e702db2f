'use strict';
// Fuzzing the native boundary: every exported native function called with random and hostile
// arguments — wrong types, wrong lengths, negative/huge/NaN sizes, detached or shared buffers,
// disposed device buffers. The process must never crash, and every failure must be an
// RnnkitError with a code. RNNKIT_FUZZ_CALLS sets the number of calls (default 100000).
const { RnnkitError } = rnnkit;
const { native } = require('../dist/native');
const { makeRandom } = require('./reference/random');

// Machine probes and pool resizing do real (slow) work on valid sizes: covered in 02.errors.
const skip = new Set(['init', 'fmaPeak', 'copyBandwidth', 'setNumThreads']);

function detached(n) {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

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
    const small = () => rng.int(0, 9);
    const gens = [
      () => undefined, () => null, () => rng.uniform(0, 1) < 0.5, () => small(), () => -small() - 1,
      () => NaN, () => Infinity, () => -Infinity, () => 2 ** 31, () => 2 ** 53, () => 1e300, () => 0.5,
      () => 'str', () => ({}), () => [], () => [1, 2, 3], () => () => 1, () => Symbol('s'), () => BigInt(3),
      () => new Float32Array(small()), () => new Float32Array(rng.int(0, 200)).fill(NaN),
      () => new Float64Array(small()), () => new Int32Array(small()).fill(rng.int(-3, 12)),
      () => new Uint8Array(small()), () => new ArrayBuffer(8), () => new Float32Array(new SharedArrayBuffer(4 * small())),
      () => detached(small() + 1), () => new Float32Array(new ArrayBuffer(64), 4, 3),
      () => ({ mode: 'lstm', inputSize: small(), hiddenSize: small(), numLayers: small() }),
      () => ({ mode: rng.int(-1, 5), inputSize: -1, hiddenSize: 2 ** 40 }),
    ];
    const arg = () => gens[rng.int(0, gens.length - 1)]();
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
