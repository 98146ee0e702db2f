'use strict';
// The one generator of hostile values, shared by the native-boundary fuzz (test/90.fuzz.test.js)
// and the public-API fuzz (test/fuzz/api.js): wrong types, negative / huge / fractional / NaN
// sizes, odd strings, typed arrays of every kind (detached, on shared or resizable buffers,
// offset views), functions, Proxies (transparent, throwing, revoked), objects whose getters throw,
// sparse and enormous arrays. `extra` generators (the API fuzz adds tensors and operator
// objects) join the list.

/** Thrown by every hostile getter, trap and callback: the fuzz recognizes its own exception. */
class HostileError extends Error {
  constructor(what) {
    super(`hostile ${what}`);
    this.name = 'HostileError';
  }
}

function detached(n) {
  const a = new Float32Array(n);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
}

const throwingTraps = {
  get: () => { throw new HostileError('Proxy get'); },
  has: () => { throw new HostileError('Proxy has'); },
  ownKeys: () => { throw new HostileError('Proxy ownKeys'); },
  getPrototypeOf: () => { throw new HostileError('Proxy getPrototypeOf'); },
  getOwnPropertyDescriptor: () => { throw new HostileError('Proxy getOwnPropertyDescriptor'); },
};

/** An object whose every listed key is a getter that throws. */
function throwingGetters(keys) {
  const o = {};
  for (const k of keys) Object.defineProperty(o, k, { enumerable: true, get: () => { throw new HostileError(`getter ${k}`); } });
  return o;
}

function revokedProxy(target) {
  const { proxy, revoke } = Proxy.revocable(target, {});
  revoke();
  return proxy;
}

/**
 * `rng` is test/reference/random.js's generator. Returns { value(), number(), small() }: value()
 * draws any hostile value, number() a hostile number only.
 */
function makeHostile(rng, extra = []) {
  const small = () => rng.int(0, 9);
  const numbers = [
    () => 0, () => -0, () => small(), () => -small() - 1, () => 0.5, () => 1.5, () => -0.5, () => NaN, () => Infinity,
    () => -Infinity, () => 2 ** 31, () => 2 ** 31 - 1, () => -(2 ** 31), () => 2 ** 32, () => 2 ** 53, () => 2 ** 53 + 2,
    () => -(2 ** 53), () => 1e300, () => Number.MIN_VALUE, () => Number.EPSILON, () => 1e6, () => 2 ** 24 + 1,
  ];
  const number = () => numbers[rng.int(0, numbers.length - 1)]();
  const gens = [
    ...numbers,
    () => undefined, () => null, () => rng.uniform(0, 1) < 0.5,
    () => '', () => 'str', () => '1', () => 'lstm', () => 'cpu', () => 'cuda', () => 'cuda:7', () => 'auto', () => '__proto__',
    () => 'constructor', () => 'x'.repeat(100000), () => Symbol('s'), () => BigInt(3), () => 2n ** 64n,
    () => ({}), () => [], () => [1, 2, 3], () => [NaN], () => [-1], () => [2 ** 53], () => [1e6, 1e6, 1e6], () => [0.5, 2],
    () => [[1, 2]], () => ['a', 'b'], () => new Array(5), () => new Array(2 ** 32 - 1), () => [undefined, null],
    () => () => 1, () => () => { throw new HostileError('callback'); }, () => async () => { throw new HostileError('async callback'); },
    () => class {}, () => Object.create(null), () => Object.freeze({ a: 1 }), () => new Date(0), () => new Map(), () => new Set(),
    () => Promise.resolve(1), () => new Error('plain'), () => Buffer.from('abc'),
    () => new Float32Array(small()), () => new Float32Array(rng.int(0, 200)).fill(NaN), () => new Float32Array(4).fill(Infinity),
    () => new Float64Array(small()), () => new Int32Array(small()).fill(rng.int(-3, 12)), () => new Uint8Array(small()),
    () => new Int8Array(3), () => new BigInt64Array(2), () => new DataView(new ArrayBuffer(8)), () => new ArrayBuffer(8),
    () => new Float32Array(new SharedArrayBuffer(4 * small())), () => detached(small() + 1),
    () => new Float32Array(new ArrayBuffer(64), 4, 3), () => new Float32Array(new ArrayBuffer(16, { maxByteLength: 64 })),
    () => new Proxy({}, {}), () => new Proxy([1, 2], {}), () => new Proxy(new Float32Array(4), {}), () => new Proxy({}, throwingTraps),
    () => new Proxy([4], throwingTraps), () => revokedProxy({}), () => revokedProxy([1]),
    () => throwingGetters(['size', 'mode', 'shape', 'params', 'data', 'lr', 'x', 'length']),
    () => Object.create(new Proxy({}, throwingTraps)),
    () => ({ mode: 'lstm', inputSize: small(), hiddenSize: small(), numLayers: small() }),
    () => ({ mode: rng.int(-1, 5), inputSize: -1, hiddenSize: 2 ** 40 }),
    ...extra,
  ];
  const value = () => gens[rng.int(0, gens.length - 1)]();
  return { value, number, small };
}

module.exports = { makeHostile, HostileError, throwingGetters, throwingTraps, revokedProxy, detached };
