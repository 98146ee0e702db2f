/**
 * Losses with their gradients, on the native kernels of native/kernels/train.h.
 *
 * crossEntropy(logits [T, B, V] or [N, V], targets Int32Array or IndexTensor of T·B (or N), options):
 *   softmax cross-entropy computed around each row's maximum (log-sum-exp). A row counts with
 *   weight mask[r] (1 without a mask; 0 drops padded steps), and not at all when its target is
 *   `ignoreIndex` (default −100, as in PyTorch). reduction 'mean' (default) divides the weighted
 *   sum by the total weight — PyTorch's mean over non-ignored targets when the mask is 0/1;
 *   'sum' does not. A batch whose rows all weigh 0 has loss 0 and a zero gradient.
 *   Returns `{ loss, dlogits }`: dlogits is ∂loss/∂logits, a new tensor shaped like logits
 *   (null with `grad: false`).
 * mseLoss(input, target, { reduction }) -> `{ loss, dinput }` with dinput = ∂loss/∂input.
 * The loss is a JavaScript number accumulated in double; non-finite logits give a non-finite
 * loss (check with Number.isFinite), never an exception.
 *
 * Devices: logits (input and target) on a CUDA device run the CUDA kernels there, and the
 * gradient stays on that device; the loss number is the one value copied back (8 bytes), or, for
 * nn's scalar losses, the loss stays on the device too (`lossOnDevice`). Targets are an Int32Array
 * or an IndexTensor (lib/index-tensor.ts): host targets (and a Float32Array mask) are uploaded with
 * the call; an IndexTensor on the logits' device is not copied at all when its known bounds prove
 * every target in [0, V) or ignoreIndex, and is read to the host and checked exactly otherwise
 * (`lastRun.fallback` says so); one on another device is ERR_RNNKIT_DEVICE. A mask tensor on the
 * device is read to the host first to be checked. An MSE with input and target on different
 * devices runs on the host.
 * `backendInfo().lastRuns` records where each call ran.
 */
import { RnnkitError } from '../errors';
import type { Device } from '../device';
import { allocFloats, argError, copyOf, isInstance, readBoolean, readChoice, readInteger, readOptions } from '../args';
import { MaybePromise, then } from '../nn/maybe';
import { DeviceBuffer, native } from '../native';
import { recordRun } from '../run-info';
import { Tensor, checkTensor, emptyTensor, isTensor } from '../tensor';
import { hostValues } from './native-train';
import { IndexTensor, checkIds, hostIds, readIds } from '../index-tensor';

/** How row losses combine: their weighted mean (default) or their sum. */
export type Reduction = 'mean' | 'sum';

/** Options of `crossEntropy` / `crossEntropySync`. */
export interface CrossEntropyOptions {
  /** Row weights (N values): 0 for padded steps, 1 otherwise. Finite and >= 0. */
  mask?: Float32Array | Tensor | null;
  /** Targets equal to this are skipped (default −100). */
  ignoreIndex?: number;
  /** 'mean' (default: over the total row weight) or 'sum'. */
  reduction?: Reduction;
  /** Compute dlogits (default true). */
  grad?: boolean;
}

/** The loss and, unless `grad: false`, its gradient. */
export interface CrossEntropyResult {
  /** The loss (a number, read back from the device for CUDA logits). */
  loss: number;
  /** dloss/dlogits, the shape of the logits; null with `grad: false`. */
  dlogits: Tensor | null;
}

/** Options of `mseLoss` / `mseLossSync`. */
export interface MseOptions {
  /** 'mean' (default: over the elements) or 'sum'. */
  reduction?: Reduction;
  /** Compute dinput (default true). */
  grad?: boolean;
}

/** The loss and, unless `grad: false`, its gradient. */
export interface MseResult {
  /** The loss. */
  loss: number;
  /** dloss/dinput, the shape of the input; null with `grad: false`. */
  dinput: Tensor | null;
}

const CE_KEYS = ['mask', 'ignoreIndex', 'reduction', 'grad'] as const;
const MSE_KEYS = ['reduction', 'grad'] as const;
const REDUCTIONS: readonly Reduction[] = ['mean', 'sum'];

/** Whether `reduction` is 'mean' (the default). */
const isMean = (v: unknown): boolean => readChoice(v, 'reduction', REDUCTIONS, 'mean') === 'mean';
const readGrad = (v: unknown): boolean => readBoolean(v, 'grad', true);

/** What every loss plan holds: whether to compute the gradient, and the reduction. */
interface LossPlan {
  grad: boolean;
  mean: boolean;
}

const lossFlags = (o: { grad?: unknown; reduction?: unknown }): LossPlan => ({ grad: readGrad(o.grad), mean: isMean(o.reduction) });

/** A loss run: the loss as a number or a one-element tensor, and the gradient when asked. */
type LossRun = { loss: number | Tensor; grad: Tensor | null };

/**
 * A loss on a CUDA device: the gradient (of `gradShape`, when asked) and, with `onDevice`, the loss
 * land in new device tensors, freed again if the call throws.
 */
function deviceLoss(device: Device, gradShape: readonly number[] | null, onDevice: boolean,
  call: (grad: DeviceBuffer | null, out: DeviceBuffer | null) => MaybePromise<number | undefined>): MaybePromise<LossRun> {
  const grad = gradShape ? emptyTensor(gradShape, device) : null;
  const out = onDevice ? emptyTensor([], device) : null;
  let loss: MaybePromise<number | undefined>;
  try {
    loss = call(grad ? grad.deviceBuffer : null, out ? out.deviceBuffer : null);
  } catch (err) {
    if (grad) grad.dispose();
    if (out) out.dispose();
    throw err;
  }
  return then(loss, (l) => ({ loss: out ?? (l as number), grad }));
}

/** A loss computed on the host, its results moved to `device` (a no-op on the CPU). */
function hostLoss(loss: MaybePromise<number>, device: Device, onDevice: boolean, grad: Float32Array | null,
  gradShape: readonly number[]): MaybePromise<LossRun> {
  return then(loss, (l) => ({
    loss: onDevice ? Tensor.fromCpu(new Float32Array([l]), []).to(device) : l,
    grad: grad ? Tensor.fromCpu(grad, gradShape).to(device) : null,
  }));
}

/** A loss as a one-element tensor on the inputs' device (nn's scalar losses) and its gradient. */
export interface DeviceLoss {
  loss: Tensor;
  grad: Tensor | null;
}

interface CePlan extends LossPlan {
  logits: Tensor;
  /** Host targets (checked; a copy of an Int32Array), or a CUDA IndexTensor's buffer. */
  targets: Int32Array | DeviceBuffer;
  mask: Float32Array | null;
  /** Why data moved between host and device to run this call (null when none did). */
  fallback: string | null;
  N: number;
  V: number;
  ignoreIndex: number;
}

function planCrossEntropy(logits: Tensor, targets: Int32Array | IndexTensor, options: CrossEntropyOptions | undefined): CePlan {
  const o = readOptions(options, CE_KEYS, 'crossEntropy options');
  checkTensor(logits, 'logits');
  if (logits.rank !== 2 && logits.rank !== 3) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `logits must be [N, V] or [T, B, V], got [${logits.shape.join(', ')}]`);
  }
  const V = logits.shape[logits.rank - 1];
  const N = V === 0 ? 0 : logits.size / V;
  if (V < 1) throw new RnnkitError('ERR_RNNKIT_SHAPE', 'logits need at least one class');
  const ids = readIds(targets, 'targets');
  const count = isInstance(ids, Int32Array) ? ids.length : ids.size;
  if (count !== N) throw new RnnkitError('ERR_RNNKIT_SHAPE', `targets must hold ${N} values, got ${count}`);
  const ignoreIndex = readInteger(o.ignoreIndex, 'ignoreIndex', -(2 ** 31), 2 ** 31 - 1, -100);
  let mask: Float32Array | null = null;
  const fallbacks: string[] = [];
  if (o.mask !== undefined && o.mask !== null) {
    if (isTensor(o.mask)) {
      mask = hostValues(checkTensor(o.mask, 'mask'));
      if (o.mask.device !== 'cpu') fallbacks.push(`the mask on ${o.mask.device} was read to the host to be checked`);
    } else if (isInstance(o.mask, Float32Array)) {
      mask = o.mask;
    } else {
      throw new RnnkitError('ERR_RNNKIT_DTYPE', 'mask must be a Float32Array or a Tensor');
    }
    if (mask.length !== N) throw new RnnkitError('ERR_RNNKIT_SHAPE', `mask must hold ${N} values, got ${mask.length}`);
    for (let r = 0; r < N; r++) {
      if (!(mask[r] >= 0 && mask[r] < Infinity)) throw argError(`mask[${r}] = ${mask[r]} must be finite and >= 0`);
    }
    // A copy: an async kernel must see the values checked here.
    mask = copyOf(mask, 'mask');
  }
  let t: Int32Array | DeviceBuffer;
  if (isInstance(ids, Int32Array)) {
    // Copied for the same reason (an IndexTensor is immutable); the binding checks host targets too.
    t = copyOf(ids, 'targets');
    checkIds(t, 'targets', V, ignoreIndex, mask);
  } else {
    const r = ids.idsFor(logits.device, 'targets', V, ignoreIndex, mask);
    t = r.ids;
    if (r.fallback) fallbacks.push(r.fallback);
  }
  return { logits, targets: t, mask, fallback: fallbacks.length ? fallbacks.join('; ') : null, N, V, ignoreIndex, ...lossFlags(o) };
}

/**
 * Cross-entropy for both twins on the logits' device: the loss as a number, or with `onDevice` as a
 * one-element tensor on that device (on CUDA nothing is then copied back).
 */
function runCrossEntropy(p: CePlan, onDevice: boolean, async: boolean): MaybePromise<LossRun> {
  const device = p.logits.device;
  recordRun('crossEntropy', device, p.fallback);
  if (device !== 'cpu') {
    return deviceLoss(device, p.grad ? p.logits.shape : null, onDevice, (dlogits, out) =>
      native().cudaSoftmaxCrossEntropy(p.logits.deviceBuffer, p.targets, p.mask, dlogits, out, p.N, p.V, p.ignoreIndex,
        p.mean, !onDevice, async));
  }
  const d = p.grad ? allocFloats(p.N * p.V, 'dlogits', 'crossEntropy') : null;
  const loss = native().softmaxCrossEntropy(p.logits.data, hostIds(p.targets, 'targets'), p.mask, d, p.N, p.V, p.ignoreIndex, p.mean,
    async);
  return hostLoss(loss, device, onDevice, d, p.logits.shape);
}

/** Softmax cross-entropy and its gradient, computed off the event loop. */
export async function crossEntropy(logits: Tensor, targets: Int32Array | IndexTensor, options?: CrossEntropyOptions): Promise<CrossEntropyResult> {
  const r = await runCrossEntropy(planCrossEntropy(logits, targets, options), false, true);
  return { loss: r.loss as number, dlogits: r.grad };
}

/** Softmax cross-entropy and its gradient, on the calling thread. */
export function crossEntropySync(logits: Tensor, targets: Int32Array | IndexTensor, options?: CrossEntropyOptions): CrossEntropyResult {
  const r = runCrossEntropy(planCrossEntropy(logits, targets, options), false, false) as { loss: number; grad: Tensor | null };
  return { loss: r.loss, dlogits: r.grad };
}

/** @internal Cross-entropy with the loss as a scalar tensor on the logits' device (nn.crossEntropy). */
export function crossEntropyOnDevice(logits: Tensor, targets: Int32Array | IndexTensor, options: CrossEntropyOptions | undefined,
  async: boolean): MaybePromise<DeviceLoss> {
  return then(runCrossEntropy(planCrossEntropy(logits, targets, options), true, async), (r) => ({ loss: r.loss as Tensor, grad: r.grad }));
}

interface MsePlan extends LossPlan {
  input: Tensor;
  target: Tensor;
}

function planMse(input: Tensor, target: Tensor, options: MseOptions | undefined): MsePlan {
  const o = readOptions(options, MSE_KEYS, 'mseLoss options');
  checkTensor(input, 'input');
  checkTensor(target, 'target');
  if (input.shape.length !== target.shape.length || input.shape.some((d, k) => d !== target.shape[k])) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `input [${input.shape.join(', ')}] and target [${target.shape.join(', ')}] differ`);
  }
  return { input, target, ...lossFlags(o) };
}

/** MSE for both twins: on the inputs' CUDA device when both are there, else on the host. */
function runMse(p: MsePlan, onDevice: boolean, async: boolean): MaybePromise<LossRun> {
  const device = p.input.device;
  if (device !== 'cpu' && p.target.device === device) {
    recordRun('mseLoss', device);
    return deviceLoss(device, p.grad ? p.input.shape : null, onDevice, (dinput, out) =>
      native().cudaMseLoss(p.input.deviceBuffer, p.target.deviceBuffer, dinput, out, p.mean, !onDevice, async));
  }
  const split = device !== 'cpu' || p.target.device !== 'cpu';
  recordRun('mseLoss', 'cpu', split ? `input on ${device}, target on ${p.target.device}: computed on the host` : null);
  const dy = p.grad ? allocFloats(p.input.size, 'dinput', 'mseLoss') : null;
  const loss = native().mseLoss(hostValues(p.input), hostValues(p.target), dy, p.mean, async);
  return hostLoss(loss, device, onDevice, dy, p.input.shape);
}

/** Mean squared error (or the sum with reduction 'sum') and its gradient, off the event loop. */
export async function mseLoss(input: Tensor, target: Tensor, options?: MseOptions): Promise<MseResult> {
  const r = await runMse(planMse(input, target, options), false, true);
  return { loss: r.loss as number, dinput: r.grad };
}

/** Mean squared error and its gradient, on the calling thread. */
export function mseLossSync(input: Tensor, target: Tensor, options?: MseOptions): MseResult {
  const r = runMse(planMse(input, target, options), false, false) as { loss: number; grad: Tensor | null };
  return { loss: r.loss, dinput: r.grad };
}

/** @internal MSE with the loss as a scalar tensor on the input's device (nn.mseLoss). */
export function mseLossOnDevice(input: Tensor, target: Tensor, options: MseOptions | undefined, async: boolean): MaybePromise<DeviceLoss> {
  return then(runMse(planMse(input, target, options), true, async), (r) => ({ loss: r.loss as Tensor, grad: r.grad }));
}
