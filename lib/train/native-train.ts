/**
 * Typed access to the training functions of the native binding (native/napi/train_ops.cc), and
 * the host round trip that lets every training op accept CUDA tensors: their values are read to
 * the CPU, the CPU kernel runs, and results are written back (there are no CUDA training kernels
 * yet, so this is correct but moves the data twice).
 */
import { native } from '../native';
import { Tensor } from '../tensor';

type Maybe<T> = T | Promise<T>;

export interface TrainBinding {
  sgdStep(p: Float32Array, g: Float32Array, buf: Float32Array | null, lr: number, momentum: number,
    dampening: number, weightDecay: number, nesterov: boolean, firstStep: boolean, async: boolean): Maybe<void>;
  adamStep(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, vmax: Float32Array | null,
    lr: number, beta1: number, beta2: number, eps: number, weightDecay: number, step: number,
    decoupled: boolean, async: boolean): Maybe<void>;
  adagradStep(p: Float32Array, g: Float32Array, sum: Float32Array, lr: number, lrDecay: number,
    weightDecay: number, eps: number, step: number, async: boolean): Maybe<void>;
  rmspropStep(p: Float32Array, g: Float32Array, squareAvg: Float32Array, gradAvg: Float32Array | null,
    buf: Float32Array | null, lr: number, alpha: number, eps: number, weightDecay: number, momentum: number,
    async: boolean): Maybe<void>;
  softmaxCrossEntropy(logits: Float32Array, targets: Int32Array, mask: Float32Array | null,
    dlogits: Float32Array | null, N: number, V: number, ignoreIndex: number, mean: boolean, async: boolean): Maybe<number>;
  mseLoss(y: Float32Array, target: Float32Array, dy: Float32Array | null, mean: boolean, async: boolean): Maybe<number>;
  sumSquares(arrays: Float32Array[], async: boolean): Maybe<number>;
  scaleArrays(arrays: Float32Array[], scale: number, async: boolean): Maybe<void>;
  clampArrays(arrays: Float32Array[], lo: number, hi: number, async: boolean): Maybe<void>;
}

export function trainNative(): TrainBinding {
  return native() as unknown as TrainBinding;
}

/** The values of a tensor on the host: a CPU tensor's own array, or a copy of a CUDA tensor's. */
export function hostValues(t: Tensor): Float32Array {
  return t.device === 'cpu' ? t.data : t.readSync();
}

/**
 * Writes host values computed for `t` back to it (nothing to copy for a CPU tensor's own array)
 * and records the in-place write in its version counter.
 */
export function writeBack(t: Tensor, host: Float32Array): void {
  if (t.device !== 'cpu') native().copyToDevice(t.deviceBuffer, host, false);
  t.bumpVersion();
}
