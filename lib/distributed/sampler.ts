/**
 * DistributedSampler: which examples of a data set this rank trains on (PyTorch's
 * DistributedSampler). Every rank draws the same permutation of [0, size) for an epoch (seeded by
 * seed + epoch, so call `setEpoch` each epoch for a new order), pads it by wrapping around to a
 * multiple of the number of ranks (or, with `dropLast`, cuts it down to one), and takes every
 * numReplicas-th index from its rank on: the ranks' shares are disjoint (but for the padding),
 * equal in length, and together cover the data set.
 */
import { RnnkitError } from '../errors';
import { isInstance, readBoolean, readInteger, readOptions, readSeed } from '../args';
import { Rng } from '../train/random';
import { ProcessGroup } from './process-group';

/** Options of `new rk.distributed.DistributedSampler(size, options)`. */
export interface DistributedSamplerOptions {
  /** Takes numReplicas and rank from the group. */
  processGroup?: ProcessGroup;
  /** Number of ranks sharing the data set (with `rank`, instead of processGroup). */
  numReplicas?: number;
  /** This process's rank, 0 to numReplicas − 1 (with `numReplicas`, instead of processGroup). */
  rank?: number;
  /** A new permutation each epoch (default true); false: the examples in order. */
  shuffle?: boolean;
  /** Seeds the permutations; the same on every rank (default 0). */
  seed?: number;
  /** Drop the tail instead of padding, so that no example is seen twice in an epoch (default false). */
  dropLast?: boolean;
}

const KEYS = ['processGroup', 'numReplicas', 'rank', 'shuffle', 'seed', 'dropLast'] as const;
const MAX_SIZE = 2 ** 31 - 1;

/** This rank's share of the indices of a data set, epoch by epoch. */
export class DistributedSampler implements Iterable<number> {
  /** Size of the data set. */
  readonly size: number;
  /** Number of ranks sharing the data set. */
  readonly numReplicas: number;
  /** This process's rank. */
  readonly rank: number;
  /** Whether each epoch draws a new permutation. */
  readonly shuffle: boolean;
  /** The seed of the permutations (epoch e uses seed + e). */
  readonly seed: number;
  /** Whether the tail is dropped instead of padded. */
  readonly dropLast: boolean;
  /** Indices this rank gets per epoch. */
  readonly numSamples: number;
  private epoch = 0;

  /**
   * @param size The number of examples of the data set (an integer from 0 to 2^31 − 1).
   * @param options `{ processGroup }` or `{ numReplicas, rank }`, and the order options.
   * @throws RnnkitError ERR_RNNKIT_ARG for a bad size or option, both or neither of processGroup and numReplicas/rank.
   */
  constructor(size: number, options?: DistributedSamplerOptions) {
    this.size = readInteger(size, 'DistributedSampler size', 0, MAX_SIZE);
    const o = readOptions(options, KEYS, 'DistributedSampler options');
    if (o.processGroup !== undefined) {
      if (!isInstance(o.processGroup, ProcessGroup)) throw new RnnkitError('ERR_RNNKIT_ARG', 'processGroup must be a ProcessGroup');
      if (o.numReplicas !== undefined || o.rank !== undefined) {
        throw new RnnkitError('ERR_RNNKIT_ARG', 'give either processGroup or numReplicas and rank, not both');
      }
      this.numReplicas = o.processGroup.worldSize;
      this.rank = o.processGroup.rank;
    } else {
      if (o.numReplicas === undefined || o.rank === undefined) {
        throw new RnnkitError('ERR_RNNKIT_ARG', 'DistributedSampler needs { processGroup } or { numReplicas, rank }');
      }
      this.numReplicas = readInteger(o.numReplicas, 'numReplicas', 1, 1 << 20);
      this.rank = readInteger(o.rank, 'rank', 0, this.numReplicas - 1);
    }
    this.shuffle = readBoolean(o.shuffle, 'shuffle', true);
    this.seed = readSeed(o.seed, 'seed', 0);
    this.dropLast = readBoolean(o.dropLast, 'dropLast', false);
    this.numSamples = this.dropLast ? Math.floor(this.size / this.numReplicas) : Math.ceil(this.size / this.numReplicas);
  }

  /** Sets the epoch (a non-negative integer): with shuffle, each epoch has its own permutation. */
  setEpoch(epoch: number): void {
    this.epoch = readInteger(epoch, 'epoch', 0, Number.MAX_SAFE_INTEGER - this.seed);
  }

  /** This rank's indices for the current epoch, in the order to visit them. */
  indices(): Int32Array {
    const order = new Int32Array(this.size);
    for (let i = 0; i < this.size; i++) order[i] = i;
    if (this.shuffle) {
      const rng = new Rng(this.seed + this.epoch);
      for (let i = this.size - 1; i > 0; i--) {
        const j = rng.int(i + 1);
        const t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
    const out = new Int32Array(this.numSamples);
    for (let k = 0; k < this.numSamples; k++) out[k] = order[(this.rank + k * this.numReplicas) % this.size];
    return out;
  }

  /** Iterates over `indices()` of the current epoch. */
  [Symbol.iterator](): Iterator<number> {
    return this.indices()[Symbol.iterator]();
  }
}
