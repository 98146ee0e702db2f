/**
 * Rng: a small seeded generator (xoshiro128**) whose whole state is four 32-bit words, so a
 * training run can save it in a checkpoint and resume drawing exactly where it stopped. Used for
 * Linear initialisation, batch sampling and dropout seeds in the demo.
 */
import { RnnkitError } from '../errors';

/** The whole state of an Rng: four unsigned 32-bit words. */
export type RngState = [number, number, number, number];

// Spreads a 32-bit value over all bits (murmur3 finalizer), so nearby seeds give unrelated states.
function mix32(v: number): number {
  v = Math.imul(v ^ (v >>> 16), 0x85ebca6b);
  v = Math.imul(v ^ (v >>> 13), 0xc2b2ae35);
  return (v ^ (v >>> 16)) >>> 0;
}

/** The seeded generator (see the top of this file). */
export class Rng {
  private s: Uint32Array;

  /** A generator seeded from a non-negative safe integer. */
  constructor(seed: number) {
    if (!Number.isSafeInteger(seed) || seed < 0) {
      throw new RnnkitError('ERR_RNNKIT_ARG', `seed must be a non-negative safe integer (got ${String(seed)})`);
    }
    const lo = seed >>> 0;
    const hi = Math.floor(seed / 2 ** 32);
    this.s = new Uint32Array([mix32(lo ^ 0x243f6a88), mix32(hi ^ 0x85a308d3), mix32(lo ^ 0x13198a2e), mix32(hi ^ 0x03707344)]);
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** A generator continuing from a saved state. */
  static fromState(state: RngState): Rng {
    if (!Array.isArray(state) || state.length !== 4 || !state.every((v) => Number.isInteger(v) && v >= 0 && v < 2 ** 32)) {
      throw new RnnkitError('ERR_RNNKIT_ARG', 'an Rng state is four unsigned 32-bit integers');
    }
    const r = new Rng(0);
    r.s = new Uint32Array(state);
    return r;
  }

  /** The current state (a copy). */
  state(): RngState {
    return [this.s[0], this.s[1], this.s[2], this.s[3]];
  }

  /** Next 32 random bits. */
  nextUint32(): number {
    const s = this.s;
    const rotl = (v: number, k: number): number => (v << k) | (v >>> (32 - k));
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

  /** Uniform in [0, 1) with 24 bits, so every value is exact in float32. */
  uniform(): number {
    return (this.nextUint32() >>> 8) / 16777216;
  }

  /** Integer in [0, n). */
  int(n: number): number {
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
