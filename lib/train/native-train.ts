/**
 * The step kernels of the optimizers on either device (the CPU bindings of train_ops.cc and their
 * CUDA twins in cuda_train_ops.cc take the same arguments over their own buffers), and the host
 * round trip for training inputs split between devices: their values are read to the CPU, the CPU
 * kernel runs, and results are written back (correct, but it moves the data twice; the ops say so
 * in their run records).
 */
import { DeviceBuffer, native, uploadSync } from '../native';
import { MaybePromise } from '../nn/maybe';
import { Tensor } from '../tensor';

/** The optimizer steps over buffers `B` of one device (formulas in native/kernels/train.h). */
export interface StepKernels<B> {
  /** SGD with momentum, dampening, Nesterov and weight decay. */
  sgdStep(p: B, g: B, buf: B | null, lr: number, momentum: number, dampening: number, weightDecay: number,
    nesterov: boolean, firstStep: boolean, async: boolean): MaybePromise<void>;
  /** Adam (decoupled: AdamW), amsgrad when vmax is given. */
  adamStep(p: B, g: B, m: B, v: B, vmax: B | null, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, step: number, decoupled: boolean, async: boolean): MaybePromise<void>;
  /** Adagrad. */
  adagradStep(p: B, g: B, sum: B, lr: number, lrDecay: number, weightDecay: number, eps: number, step: number,
    async: boolean): MaybePromise<void>;
  /** RMSprop, centered when gradAvg is given, with momentum when buf is. */
  rmspropStep(p: B, g: B, squareAvg: B, gradAvg: B | null, buf: B | null, lr: number, alpha: number, eps: number,
    weightDecay: number, momentum: number, async: boolean): MaybePromise<void>;
}

/** The CPU steps. */
export const cpuSteps: StepKernels<Float32Array> = {
  sgdStep: (...a) => native().sgdStep(...a),
  adamStep: (...a) => native().adamStep(...a),
  adagradStep: (...a) => native().adagradStep(...a),
  rmspropStep: (...a) => native().rmspropStep(...a),
};

/** The CUDA steps: the same bits as the CPU's (cuda/train.cu). */
export const cudaSteps: StepKernels<DeviceBuffer> = {
  sgdStep: (...a) => native().cudaSgdStep(...a),
  adamStep: (...a) => native().cudaAdamStep(...a),
  adagradStep: (...a) => native().cudaAdagradStep(...a),
  rmspropStep: (...a) => native().cudaRmspropStep(...a),
};

/** Whether every tensor is on one CUDA device (then the CUDA kernels run with no host copy). */
export function allOnOneCuda(ts: readonly Tensor[]): boolean {
  return ts.length > 0 && ts[0].device !== 'cpu' && ts.every((t) => t.device === ts[0].device);
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
  if (t.device !== 'cpu') uploadSync(t.deviceBuffer, host);
  t.bumpVersion();
}
