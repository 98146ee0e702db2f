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
 */
import { RnnkitError } from '../errors';
import { argError, readBoolean, readChoice, readInteger, readOptions } from '../args';
import { Tensor, checkTensor } from '../tensor';
import { native } from '../native';
import { hostValues } from './native-train';

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

const CE_KEYS = ['mask', 'ignoreIndex', 'reduction', 'grad'] as const;
const MSE_KEYS = ['reduction', 'grad'] as const;
const REDUCTIONS: readonly Reduction[] = ['mean', 'sum'];

/** Whether `reduction` is 'mean' (the default). */
const isMean = (v: unknown): boolean => readChoice(v, 'reduction', REDUCTIONS, 'mean') === 'mean';
const readGrad = (v: unknown): boolean => readBoolean(v, 'grad', true);

interface CePlan {
  logits: Tensor;
  x: Float32Array;
  targets: Int32Array;
  mask: Float32Array | null;
  dlogits: Float32Array | null;
  N: number;
  V: number;
  ignoreIndex: number;
  mean: boolean;
}

function planCrossEntropy(logits: Tensor, targets: Int32Array, options: CrossEntropyOptions | undefined): CePlan {
  const o = readOptions(options, CE_KEYS, 'crossEntropy options');
  checkTensor(logits, 'logits');
  if (logits.rank !== 2 && logits.rank !== 3) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `logits must be [N, V] or [T, B, V], got [${logits.shape.join(', ')}]`);
  }
  const V = logits.shape[logits.rank - 1];
  const N = V === 0 ? 0 : logits.size / V;
  if (V < 1) throw new RnnkitError('ERR_RNNKIT_SHAPE', 'logits need at least one class');
  if (!(targets instanceof Int32Array)) throw new RnnkitError('ERR_RNNKIT_DTYPE', 'targets must be an Int32Array');
  if (targets.length !== N) throw new RnnkitError('ERR_RNNKIT_SHAPE', `targets must hold ${N} values, got ${targets.length}`);
  const ignoreIndex = readInteger(o.ignoreIndex, 'ignoreIndex', -(2 ** 31), 2 ** 31 - 1, -100);
  let mask: Float32Array | null = null;
  if (o.mask !== undefined && o.mask !== null) {
    if (o.mask instanceof Tensor) mask = hostValues(checkTensor(o.mask, 'mask'));
    else if (o.mask instanceof Float32Array) mask = o.mask;
    else throw new RnnkitError('ERR_RNNKIT_DTYPE', 'mask must be a Float32Array or a Tensor');
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
  const grad = readGrad(o.grad);
  const mean = isMean(o.reduction);
  return { logits, x: hostValues(logits), targets: t, mask, dlogits: grad ? new Float32Array(N * V) : null, N, V, ignoreIndex, mean };
}

function ceResult(p: CePlan, loss: number): CrossEntropyResult {
  let dlogits: Tensor | null = null;
  if (p.dlogits) dlogits = Tensor.fromCpu(p.dlogits, p.logits.shape).to(p.logits.device);
  return { loss, dlogits };
}

/** Softmax cross-entropy and its gradient, computed off the event loop. */
export async function crossEntropy(logits: Tensor, targets: Int32Array, options?: CrossEntropyOptions): Promise<CrossEntropyResult> {
  const p = planCrossEntropy(logits, targets, options);
  const loss = await native().softmaxCrossEntropy(p.x, p.targets, p.mask, p.dlogits, p.N, p.V, p.ignoreIndex, p.mean, true);
  return ceResult(p, loss);
}

/** Softmax cross-entropy and its gradient, on the calling thread. */
export function crossEntropySync(logits: Tensor, targets: Int32Array, options?: CrossEntropyOptions): CrossEntropyResult {
  const p = planCrossEntropy(logits, targets, options);
  const loss = native().softmaxCrossEntropy(p.x, p.targets, p.mask, p.dlogits, p.N, p.V, p.ignoreIndex, p.mean, false) as number;
  return ceResult(p, loss);
}

interface MsePlan {
  input: Tensor;
  y: Float32Array;
  t: Float32Array;
  dy: Float32Array | null;
  mean: boolean;
}

function planMse(input: Tensor, target: Tensor, options: MseOptions | undefined): MsePlan {
  const o = readOptions(options, MSE_KEYS, 'mseLoss options');
  checkTensor(input, 'input');
  checkTensor(target, 'target');
  if (input.shape.length !== target.shape.length || input.shape.some((d, k) => d !== target.shape[k])) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `input [${input.shape.join(', ')}] and target [${target.shape.join(', ')}] differ`);
  }
  const mean = isMean(o.reduction);
  return { input, y: hostValues(input), t: hostValues(target), dy: readGrad(o.grad) ? new Float32Array(input.size) : null, mean };
}

function mseResult(p: MsePlan, loss: number): MseResult {
  if (!p.dy) return { loss, dinput: null };
  const d = Tensor.fromCpu(p.dy, p.input.shape);
  return { loss, dinput: d.to(p.input.device) };
}

/** Mean squared error (or the sum with reduction 'sum') and its gradient, off the event loop. */
export async function mseLoss(input: Tensor, target: Tensor, options?: MseOptions): Promise<MseResult> {
  const p = planMse(input, target, options);
  return mseResult(p, await native().mseLoss(p.y, p.t, p.dy, p.mean, true));
}

/** Mean squared error and its gradient, on the calling thread. */
export function mseLossSync(input: Tensor, target: Tensor, options?: MseOptions): MseResult {
  const p = planMse(input, target, options);
  return mseResult(p, native().mseLoss(p.y, p.t, p.dy, p.mean, false) as number);
}

