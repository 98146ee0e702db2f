/**
 * Losses with their gradients, on the native kernels of native/kernels/train.h.
 *
 * crossEntropy(logits [T, B, V] or [N, V], targets Int32Array of T·B (or N), options):
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
 * gradient stays on that device; the loss number is the one value copied back (8 bytes). The
 * targets (and a Float32Array mask) are uploaded with the call; a mask tensor on the device is read
 * to the host first to be checked. An MSE with input and target on different devices runs on the
 * host. `backendInfo().lastRuns` records where each call ran.
 */
import { RnnkitError } from '../errors';
import { recordRun } from '../run-info';
import { Tensor, checkTensor, emptyTensor } from '../tensor';
import { Maybe, andThen } from '../maybe';
import { cudaTrainNative, hostValues, trainNative } from './native-train';

export type Reduction = 'mean' | 'sum';

export interface CrossEntropyOptions {
  /** Row weights (N values): 0 for padded steps, 1 otherwise. Finite and >= 0. */
  mask?: Float32Array | Tensor | null;
  /** Targets equal to this are skipped (default −100). */
  ignoreIndex?: number;
  reduction?: Reduction;
  /** Compute dlogits (default true). */
  grad?: boolean;
}

export interface CrossEntropyResult {
  loss: number;
  dlogits: Tensor | null;
}

export interface MseOptions {
  reduction?: Reduction;
  grad?: boolean;
}

export interface MseResult {
  loss: number;
  dinput: Tensor | null;
}

function argError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_ARG', message);
}

function reductionOf(v: unknown): boolean {
  if (v === undefined || v === 'mean') return true;
  if (v === 'sum') return false;
  throw argError(`reduction must be 'mean' or 'sum' (got ${String(v)})`);
}

function gradOf(v: unknown): boolean {
  if (v === undefined) return true;
  if (typeof v !== 'boolean') throw argError('grad must be a boolean');
  return v;
}

interface CePlan {
  logits: Tensor;
  targets: Int32Array;
  mask: Float32Array | null;
  /** Why data moved between host and device to run this call (null when none did). */
  fallback: string | null;
  grad: boolean;
  N: number;
  V: number;
  ignoreIndex: number;
  mean: boolean;
}

function planCrossEntropy(logits: Tensor, targets: Int32Array, options: CrossEntropyOptions): CePlan {
  checkTensor(logits, 'logits');
  if (logits.rank !== 2 && logits.rank !== 3) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `logits must be [N, V] or [T, B, V], got [${logits.shape.join(', ')}]`);
  }
  const V = logits.shape[logits.rank - 1];
  const N = V === 0 ? 0 : logits.size / V;
  if (V < 1) throw new RnnkitError('ERR_RNNKIT_SHAPE', 'logits need at least one class');
  if (!(targets instanceof Int32Array)) throw new RnnkitError('ERR_RNNKIT_DTYPE', 'targets must be an Int32Array');
  if (targets.length !== N) throw new RnnkitError('ERR_RNNKIT_SHAPE', `targets must hold ${N} values, got ${targets.length}`);
  const o = options ?? {};
  const ignoreIndex = o.ignoreIndex === undefined ? -100 : o.ignoreIndex;
  if (!Number.isInteger(ignoreIndex) || ignoreIndex < -(2 ** 31) || ignoreIndex >= 2 ** 31) {
    throw argError(`ignoreIndex must be a 32-bit integer (got ${String(ignoreIndex)})`);
  }
  let mask: Float32Array | null = null;
  let fallback: string | null = null;
  if (o.mask !== undefined && o.mask !== null) {
    if (o.mask instanceof Tensor) {
      mask = hostValues(checkTensor(o.mask, 'mask'));
      if (o.mask.device !== 'cpu') fallback = `the mask on ${o.mask.device} was read to the host to be checked`;
    } else if (o.mask instanceof Float32Array) {
      mask = o.mask;
    } else {
      throw new RnnkitError('ERR_RNNKIT_DTYPE', 'mask must be a Float32Array or a Tensor');
    }
    if (mask.length !== N) throw new RnnkitError('ERR_RNNKIT_SHAPE', `mask must hold ${N} values, got ${mask.length}`);
    for (let r = 0; r < N; r++) {
      if (!(mask[r] >= 0 && mask[r] < Infinity)) throw argError(`mask[${r}] = ${mask[r]} must be finite and >= 0`);
    }
    // A copy: an async kernel must see the values checked here.
    mask = mask.slice();
  }
  // Targets are copied for the same reason; the binding checks their range.
  const t = targets.slice();
  for (let r = 0; r < N; r++) {
    if (t[r] !== ignoreIndex && (mask === null || mask[r] !== 0) && (t[r] < 0 || t[r] >= V)) {
      throw argError(`targets[${r}] = ${t[r]} is outside [0, ${V}) and is not ignoreIndex ${ignoreIndex}`);
    }
  }
  return { logits, targets: t, mask, fallback, grad: gradOf(o.grad), N, V, ignoreIndex, mean: reductionOf(o.reduction) };
}

/** Cross-entropy for both twins, on the logits' device. */
function runCrossEntropy(p: CePlan, async: boolean): Maybe<CrossEntropyResult> {
  const device = p.logits.device;
  recordRun('crossEntropy', device, p.fallback);
  if (device !== 'cpu') {
    const dlogits = p.grad ? emptyTensor(p.logits.shape, device) : null;
    let loss: Maybe<number | undefined>;
    try {
      loss = cudaTrainNative().cudaSoftmaxCrossEntropy(p.logits.deviceBuffer, p.targets, p.mask,
        dlogits ? dlogits.deviceBuffer : null, null, p.N, p.V, p.ignoreIndex, p.mean, true, async);
    } catch (err) {
      if (dlogits) dlogits.dispose();
      throw err;
    }
    return andThen(loss, (l) => ({ loss: l as number, dlogits }));
  }
  const d = p.grad ? new Float32Array(p.N * p.V) : null;
  const loss = trainNative().softmaxCrossEntropy(p.logits.data, p.targets, p.mask, d, p.N, p.V, p.ignoreIndex, p.mean, async);
  return andThen(loss, (l) => ({ loss: l, dlogits: d ? Tensor.fromCpu(d, p.logits.shape) : null }));
}

/** Softmax cross-entropy and its gradient, computed off the event loop. */
export async function crossEntropy(logits: Tensor, targets: Int32Array, options: CrossEntropyOptions = {}): Promise<CrossEntropyResult> {
  return runCrossEntropy(planCrossEntropy(logits, targets, options), true);
}

/** Softmax cross-entropy and its gradient, on the calling thread. */
export function crossEntropySync(logits: Tensor, targets: Int32Array, options: CrossEntropyOptions = {}): CrossEntropyResult {
  return runCrossEntropy(planCrossEntropy(logits, targets, options), false) as CrossEntropyResult;
}

interface MsePlan {
  input: Tensor;
  target: Tensor;
  grad: boolean;
  mean: boolean;
}

function planMse(input: Tensor, target: Tensor, options: MseOptions): MsePlan {
  checkTensor(input, 'input');
  checkTensor(target, 'target');
  if (input.shape.length !== target.shape.length || input.shape.some((d, k) => d !== target.shape[k])) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `input [${input.shape.join(', ')}] and target [${target.shape.join(', ')}] differ`);
  }
  const o = options ?? {};
  return { input, target, grad: gradOf(o.grad), mean: reductionOf(o.reduction) };
}

/** MSE for both twins: on the inputs' CUDA device when both are there, else on the host. */
function runMse(p: MsePlan, async: boolean): Maybe<MseResult> {
  const device = p.input.device;
  if (device !== 'cpu' && p.target.device === device) {
    recordRun('mseLoss', device);
    const dinput = p.grad ? emptyTensor(p.input.shape, device) : null;
    let loss: Maybe<number | undefined>;
    try {
      loss = cudaTrainNative().cudaMseLoss(p.input.deviceBuffer, p.target.deviceBuffer, dinput ? dinput.deviceBuffer : null,
        null, p.mean, true, async);
    } catch (err) {
      if (dinput) dinput.dispose();
      throw err;
    }
    return andThen(loss, (l) => ({ loss: l as number, dinput }));
  }
  const split = device !== 'cpu' || p.target.device !== 'cpu';
  recordRun('mseLoss', 'cpu', split ? `input on ${device}, target on ${p.target.device}: computed on the host` : null);
  const dy = p.grad ? new Float32Array(p.input.size) : null;
  const loss = trainNative().mseLoss(hostValues(p.input), hostValues(p.target), dy, p.mean, async);
  return andThen(loss, (l) => ({ loss: l, dinput: dy ? Tensor.fromCpu(dy, p.input.shape).to(device) : null }));
}

/** Mean squared error (or the sum with reduction 'sum') and its gradient, off the event loop. */
export async function mseLoss(input: Tensor, target: Tensor, options: MseOptions = {}): Promise<MseResult> {
  return runMse(planMse(input, target, options), true);
}

/** Mean squared error and its gradient, on the calling thread. */
export function mseLossSync(input: Tensor, target: Tensor, options: MseOptions = {}): MseResult {
  return runMse(planMse(input, target, options), false) as MseResult;
}
