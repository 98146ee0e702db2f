/**
 * Rng: a small seeded generator (xoshiro128**) whose whole state is four 32-bit words, so a
 * training run can save it in a checkpoint and resume drawing exactly where it stopped. Used for
 * Linear initialisation, batch sampling and dropout seeds in the demo.
 */
import { RnnkitError } from '../errors';
import { describe, readArray } from '../args';

/** The whole state of an Rng: four unsigned 32-bit words. */
export type RngState = [number, number, number, number];

/** Spreads a 32-bit value over all bits (murmur3's bijective finalizer), so nearby seeds give unrelated states. */
export function mix32(v: number): number {
  v = Math.imul(v ^ (v >>> 16), 0x85ebca6b);
  v = Math.imul(v ^ (v >>> 13), 0xc2b2ae35);
  return (v ^ (v >>> 16)) >>> 0;
}

const rotl = (v: number, k: number): number => (v << k) | (v >>> (32 - k));

/**
 * One xoshiro128** step on a four-word state (a Uint32Array or plain numbers, updated in place):
 * the next 32 random bits, unsigned. Shared by Rng and the weight initialisation of
 * lib/recurrent-params.ts.
 */
export function xoshiroNext(s: { [k: number]: number }): number {
  const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
  const t = s[1] << 9;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 11);
  return result;
}

/** The seeded generator (see the top of this file). */
export class Rng {
  private s: Uint32Array;

  /** A generator seeded from a non-negative safe integer. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RnnkitError('ERR_RNNKIT_ARG', `seed must be a non-negative safe integer (got ${describe(seed)})`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32);
    this.s = new Uint32Array([mix32(lo ^ 0x243f6a88), mix32(hi ^ 0x85a308d3), mix32(lo ^ 0x13198a2e), mix32(hi ^ 0x03707344)]);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** A generator continuing from a saved state. */
  static fromState(state: RngState): Rng {
    const words = readArray(state, 'the Rng state');
    if (words.length !== 4 || !words.every((v) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v < 2 ** 32) ||
      words.every((v) => v === 0)) {
      throw new RnnkitError('ERR_RNNKIT_ARG', 'an Rng state is four unsigned 32-bit integers, not all zero');
    }
    const r = new Rng(0);
    r.s = new Uint32Array(words as number[]);
    return r;
  }

  /** The current state (a copy). */
  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  /** Next 32 random bits. */
  nextUint32(): number {
    return xoshiroNext(this.s);
  }

  /** Uniform in [0, 1) with 24 bits, so every value is exact in float32. */
  uniform(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Integer in [0, n), n a positive integer up to 2^32. */
  int(n: number): number {
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 2 ** 32) {
      throw new RnnkitError('ERR_RNNKIT_ARG', `Rng.int(n): n must be an integer in [1, 2^32] (got ${describe(n)})`);
    }
    return Math.floor(this.uniform() * n);
  }

  /** A non-negative integer below 2^47 (e.g. a dropout seed). */
  seed(): number {
    return (this.nextUint32() >>> 17) * 2 ** 32 + this.nextUint32();
  }
}

/** A fresh seed (below 2^47) for an object whose caller gave none. */
export function randomSeed(): number {
  return Math.floor(Math.random() * 2 ** 47);
}
