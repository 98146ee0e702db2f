'use strict';
// The native boundary: no JavaScript value may crash the process; every failure is a typed error.
const { RnnkitError } = rnnkit;
const { native } = require('../dist/native');

const hostile = [
  undefined, null, true, 0, -1, 1.5, NaN, Infinity, -Infinity, 2 ** 53, 'str', Symbol('s'), {}, [],
  [1, 2], () => 1, new Float64Array(4), new Int32Array(4), new Uint8Array(4), new Float32Array(0),
  new Float32Array(3), new ArrayBuffer(8), new SharedArrayBuffer(16), new Float32Array(new SharedArrayBuffer(16)),
  BigInt(5),
];

function show(v) {
  try {
    return ArrayBuffer.isView(v) ? `${v.constructor.name}(${v.length})` : String(v);
  } catch (err) {
    return typeof v;
  }
}

function detachedFloat32() {
  const a = new Float32Array(8);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

describe('RnnkitError and the native boundary', () => {
  after(() => rnnkit.setNumThreads(0));

  it('RnnkitError carries a stable code and name', () => {
    const e = new RnnkitError('ERR_RNNKIT_ARG', 'bad');
    expect(e).to.be.instanceOf(Error);
    expect(e.name).to.equal('RnnkitError');
    expect(e.code).to.equal('ERR_RNNKIT_ARG');
  });

  it('native errors are RnnkitError instances with codes', () => {
    const err = expectCode(() => native().matmul(1), 'ERR_RNNKIT_DTYPE');
    expect(err).to.be.instanceOf(RnnkitError);
    expectCode(() => native().setIsa('sse9'), 'ERR_RNNKIT_ARG');
    expectCode(() => native().setNumThreads(-5), 'ERR_RNNKIT_ARG');
  });

  it('matmul rejects short buffers, bad sizes and detached arrays', () => {
    const m = native().matmul;
    const f = (n) => new Float32Array(n);
    expectCode(() => m(f(4), f(4), f(3), 2, 2, 2, false, false, false, false), 'ERR_RNNKIT_SHAPE');
    expectCode(() => m(f(4), f(4), f(4), 2, 2, 3, false, false, false, false), 'ERR_RNNKIT_SHAPE');
    expectCode(() => m(f(4), f(4), f(4), -2, 2, 2, false, false, false, false), 'ERR_RNNKIT_ARG');
    expectCode(() => m(f(4), f(4), f(4), NaN, 2, 2, false, false, false, false), 'ERR_RNNKIT_ARG');
    expectCode(() => m(f(4), f(4), f(4), 2 ** 40, 2 ** 40, 2, false, false, false, false), 'ERR_RNNKIT_ARG');
    expectCode(() => m(f(4), f(4), f(4), 2, 2, 2, 'no', false, false, false), 'ERR_RNNKIT_ARG');
    // A detached buffer reads as empty, so it fails the size check.
    expectCode(() => m(detachedFloat32(), f(4), f(4), 2, 2, 2, false, false, false, false), 'ERR_RNNKIT_SHAPE');
  });

  it('every exported native function survives hostile arguments', () => {
    const b = native();
    const names = Object.keys(b).filter((k) => typeof b[k] === 'function' && k !== 'init');
    expect(names.length).to.be.greaterThan(8);
    // Process-wide settings the hostile calls may change, restored after.
    const { limitBytes } = rnnkit.backendInfo().hostCache;
    const threads = b.numThreads();
    let calls = 0;
    for (const name of names) {
      for (let i = 0; i < 300; i++) {
        const n = i % 12;
        const args = [];
        for (let j = 0; j < n; j++) args.push(hostile[(i * 7 + j * 13 + name.length) % hostile.length]);
        if (i % 5 === 0) args.push(detachedFloat32());
        try {
          const r = name === 'DeviceBuffer' ? new b[name](...args) : b[name](...args);
          if (r && typeof r.then === 'function') r.catch(() => {});
          if (r && typeof r.dispose === 'function') r.dispose();
        } catch (err) {
          // TypeError comes from calling a class without `new`: V8's, not ours.
          if (!(err instanceof TypeError && name === 'DeviceBuffer')) {
            expect(err, `${name}(${args.map(show).join(', ')})`).to.be.instanceOf(RnnkitError);
            expect(err.code).to.match(/^ERR_RNNKIT_/);
          }
        }
        calls++;
      }
    }
    b.setHostCacheLimit(limitBytes);
    b.setHostCachePoison(true);
    b.setNumThreads(threads);
    expect(calls).to.equal(names.length * 300);
  });
});
