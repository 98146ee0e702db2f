/**
 * Typed access to the training functions of the native binding: the CPU kernels
 * (native/napi/train_ops.cc) and their CUDA twins (native/napi/cuda_train_ops.cc, same argument
 * order with device buffers, present in both flavors), and the host round trip for inputs that
 * are split between devices: their values are read to the CPU, the CPU kernel runs, and results
 * are written back (correct, but it moves the data twice; the ops say so in their run records).
 */
import { Maybe } from '../maybe';
import { DeviceBuffer, native } from '../native';
import { Tensor } from '../tensor';


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

/** A buffer of a training op: a CPU array or a device buffer, by the kernel that runs. */
export type Buf = Float32Array | DeviceBuffer;

/** The optimizer steps over either kind of buffer (the CPU and CUDA bindings share the order). */
export interface StepKernels {
  sgdStep(p: Buf, g: Buf, buf: Buf | null, lr: number, momentum: number, dampening: number, weightDecay: number,
    nesterov: boolean, firstStep: boolean, async: boolean): Maybe<void>;
  adamStep(p: Buf, g: Buf, m: Buf, v: Buf, vmax: Buf | null, lr: number, beta1: number, beta2: number, eps: number,
    weightDecay: number, step: number, decoupled: boolean, async: boolean): Maybe<void>;
  adagradStep(p: Buf, g: Buf, sum: Buf, lr: number, lrDecay: number, weightDecay: number, eps: number, step: number,
    async: boolean): Maybe<void>;
  rmspropStep(p: Buf, g: Buf, squareAvg: Buf, gradAvg: Buf | null, buf: Buf | null, lr: number, alpha: number,
    eps: number, weightDecay: number, momentum: number, async: boolean): Maybe<void>;
}

export interface CudaTrainBinding {
  cudaSoftmaxCrossEntropy(logits: DeviceBuffer, targets: Int32Array, mask: Float32Array | DeviceBuffer | null,
    dlogits: DeviceBuffer | null, out: DeviceBuffer | null, N: number, V: number, ignoreIndex: number, mean: boolean,
    read: boolean, async: boolean): Maybe<number | undefined>;
  cudaMseLoss(y: DeviceBuffer, target: DeviceBuffer, dy: DeviceBuffer | null, out: DeviceBuffer | null, mean: boolean,
    read: boolean, async: boolean): Maybe<number | undefined>;
  cudaSumSquares(buffers: DeviceBuffer[], async: boolean): Maybe<number>;
  cudaClipGradNorm(buffers: DeviceBuffer[], maxNorm: number, out: DeviceBuffer | null, read: boolean,
    async: boolean): Maybe<number | undefined>;
  cudaScaleBuffers(buffers: DeviceBuffer[], scale: number, async: boolean): Maybe<void>;
  cudaClampBuffers(buffers: DeviceBuffer[], lo: number, hi: number, async: boolean): Maybe<void>;
  cudaFill(buffer: DeviceBuffer, value: number, async: boolean): Maybe<void>;
  cudaAddRows(y: DeviceBuffer, bias: DeviceBuffer, rows: number, cols: number, async: boolean): Maybe<void>;
  cudaColumnSums(dst: DeviceBuffer, src: DeviceBuffer, rows: number, cols: number, accumulate: boolean,
    async: boolean): Maybe<void>;
}

export function cudaTrainNative(): CudaTrainBinding {
  return native() as unknown as CudaTrainBinding;
}

/** The step kernels of a device: the CPU ones, or the CUDA ones for a CUDA device. */
export function stepKernels(onCuda: boolean): StepKernels {
  const n = native() as unknown as Record<string, StepKernels[keyof StepKernels]>;
  if (!onCuda) return trainNative() as unknown as StepKernels;
  return {
    sgdStep: n.cudaSgdStep as StepKernels['sgdStep'],
    adamStep: n.cudaAdamStep as StepKernels['adamStep'],
    adagradStep: n.cudaAdagradStep as StepKernels['adagradStep'],
    rmspropStep: n.cudaRmspropStep as StepKernels['rmspropStep'],
  };
}

/** Whether every tensor is on one CUDA device (then the CUDA kernels run with no host copy). */
export function allOnOneCuda(ts: readonly Tensor[]): boolean {
  return ts.length > 0 && ts[0].device !== 'cpu' && ts.every((t) => t.device === ts[0].device);
}

/** The values of a tensor on the host: a CPU tensor's own array, or a copy of a CUDA tensor's. */
export function hostValues(t: Tensor): Float32Array {
  return t.device === 'cpu' ? t.data : t.readSync();
}

/** Writes host values computed for `t` back to it (nothing to do for a CPU tensor's own array). */
export function writeBack(t: Tensor, host: Float32Array): void {
  if (t.device !== 'cpu') native().copyToDevice(t.deviceBuffer, host, false);
}
