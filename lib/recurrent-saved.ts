/**
 * RecurrentSaved: what a training forward of the Recurrent op keeps for its backward. A CPU
 * forward keeps host arrays (`cpu`), a CUDA forward device tensors (`cuda`); exactly one is set
 * until `release()`. The saved activations have one layout on both backends
 * (native/kernels/recurrent_layout.h), sized by `Recurrent.savedSize(T, B)`.
 */
import { argError } from './args';
import { Tensor } from './tensor';
import { savedPool } from './host-cache';

/** @internal Only the Recurrent dispatch makes a saved (recurrent-cpu.ts, recurrent-cuda.ts). */
export const MAKE_SAVED = Symbol('RecurrentSaved');


type F32 = Float32Array | null;

/** What a CPU training forward keeps: the host arrays the kernels read again. */
export interface CpuSaved {
  x: Float32Array;
  hx: F32;
  cx: F32;
  seqLengths: Int32Array | null;
  y: Float32Array;
  activations: Float32Array;
}

/** What a CUDA training forward keeps: device tensors, and the copies of inputs it made. */
export interface CudaSaved {
  y: Tensor;
  hx: Tensor | null;
  cx: Tensor | null;
  seqLengths: Int32Array | null;
  activations: Tensor;
  /** Tensors made for this saved (activations, inputs copied from another device). */
  owned: Tensor[];
}

/** What `RecurrentSaved` is made from. */
export interface RecurrentSavedInit {
  owner: object;
  T: number;
  B: number;
  inputs: ReadonlyArray<Tensor | null>;
  weightsVersion: number;
  dropout: number;
  dropoutSeed: number;
  xShape: readonly number[];
  yShape: readonly number[];
  cpu: CpuSaved | null;
  cuda: CudaSaved | null;
}

/** What a training forward keeps for its backward. Opaque; `release()` frees it early. */
export class RecurrentSaved {
  /** @internal The op whose forward made it. */ readonly owner: object;
  /** @internal */ readonly T: number;
  /** @internal */ readonly B: number;
  /** @internal x, hx and cx as given to the forward. */ readonly inputs: ReadonlyArray<Tensor | null>;
  /** @internal */ readonly weightsVersion: number;
  /** @internal */ readonly dropout: number;
  /** @internal */ readonly dropoutSeed: number;
  /** @internal */ readonly xShape: readonly number[];
  /** @internal */ readonly yShape: readonly number[];
  /** @internal The CPU forward's arrays (null for a CUDA forward or once released). */ cpu: CpuSaved | null;
  /** @internal The CUDA forward's tensors (null for a CPU forward or once released). */ cuda: CudaSaved | null;

  /** @internal A training forward makes it. */
  constructor(token: symbol, init: RecurrentSavedInit) {
    if (token !== MAKE_SAVED) throw argError('a RecurrentSaved comes from forward(x, { training: true }).saved');
    this.owner = init.owner;
    this.T = init.T;
    this.B = init.B;
    this.inputs = init.inputs;
    this.weightsVersion = init.weightsVersion;
    this.dropout = init.dropout;
    this.dropoutSeed = init.dropoutSeed;
    this.xShape = init.xShape;
    this.yShape = init.yShape;
    this.cpu = init.cpu;
    this.cuda = init.cuda;
  }

  /** Whether `release()` has run. */
  get released(): boolean {
    return this.cpu === null && this.cuda === null;
  }

  /** The device x of the forward was on. */
  get inputDevice(): Tensor['device'] {
    return (this.inputs[0] as Tensor).device;
  }

  /**
   * Drops the saved activations and references now (device memory at once; a CPU forward's
   * activation array goes to the next training forward, once no backward reads it); a later
   * backward with it throws.
   */
  release(): void {
    if (this.cpu) {
      const use = inUse.get(this);
      if (use) use.recycle = this.cpu.activations;
      else savedPool.give(this.cpu.activations);
    }
    this.cpu = null;
    if (this.cuda) this.cuda.owned.forEach((t) => t.dispose());
    this.cuda = null;
  }
}

/** Saveds whose CPU activations a running backward reads, and the array a release() meanwhile left to recycle. */
const inUse = new WeakMap<RecurrentSaved, { users: number; recycle: Float32Array | null }>();

/**
 * @internal An async CPU backward reads `saved`'s activations between `useActivations(saved, 1)`
 * and `useActivations(saved, -1)`; a `release()` in between recycles them only at the end.
 */
export function useActivations(saved: RecurrentSaved, delta: 1 | -1): void {
  const use = inUse.get(saved) ?? { users: 0, recycle: null };
  use.users += delta;
  if (use.users > 0) {
    inUse.set(saved, use);
    return;
  }
  inUse.delete(saved);
  if (use.recycle) savedPool.give(use.recycle);
}
