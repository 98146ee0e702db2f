/**
 * Gradient clipping (torch.nn.utils.clip_grad_norm_ / clip_grad_value_), in place.
 *
 * Each function takes gradient tensors, or parameters (tensors that require gradients, e.g.
 * `model.parameters()`), whose `.grad` is used (parameters without one are skipped).
 *
 * clipGradNorm(grads, maxNorm): total = sqrt(Σ g²) over all gradients, accumulated in double in a
 * fixed order (the same value whatever the thread count). When maxNorm / (total + 1e-6) < 1 every
 * gradient is multiplied by that factor, rounded once to float32. Returns the total norm before
 * clipping. A non-finite norm clips nothing and is returned as it is, or throws
 * ERR_RNNKIT_NONFINITE with `errorIfNonfinite`.
 * clipGradValue(grads, clipValue): clamps every element to [−clipValue, clipValue] (NaN stays NaN).
 *
 * Devices: gradients all on one CUDA device are clipped there (a deterministic device reduction;
 * the device decides whether to scale, so nothing travels through the host). The norm is then a
 * number read back from the device (8 bytes), or with `{ norm: 'tensor' }` a one-element tensor
 * left on the device, for a training step that copies nothing to the host. Gradients split over
 * devices are clipped on the host, and the run record (`backendInfo().lastRuns`) says so.
 */
import { Device } from '../device';
import { RnnkitError } from '../errors';
import { readArray, readBoolean, readChoice, readNumber, readOptions } from '../args';
import { native } from '../native';
import { MaybePromise, then } from '../nn/maybe';
import { recordRun } from '../run-info';
import { Tensor, checkTensor, emptyTensor } from '../tensor';
import { allOnOneCuda, hostValues, writeBack } from './native-train';
import { gradsOf } from './grads';

/** Options of `clipGradNorm` / `clipGradNormSync`. */
export interface ClipNormOptions {
  /** Throw ERR_RNNKIT_NONFINITE when the norm is NaN or infinite (default false: then nothing is scaled). */
  errorIfNonfinite?: boolean;
  /** 'number' (default): return the norm as a number; 'tensor': as a one-element tensor on the gradients' device. */
  norm?: 'number' | 'tensor';
}

function checkGrads(grads: readonly Tensor[]): Tensor[] {
  return gradsOf(readArray(grads, 'grads').map((g, k) => checkTensor(g, `grads[${k}]`)));
}

const checkLimit = (v: unknown, what: string): number => readNumber(v, what, { min: 0 });

function readClipOptions(options: ClipNormOptions | undefined): { errorIfNonfinite: boolean; asTensor: boolean } {
  const o = readOptions(options, ['errorIfNonfinite', 'norm'], 'clipGradNorm options');
  return {
    errorIfNonfinite: readBoolean(o.errorIfNonfinite, 'errorIfNonfinite', false),
    asTensor: readChoice(o.norm, 'norm', ['number', 'tensor'], 'number') === 'tensor',
  };
}

function nonFinite(total: number): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_NONFINITE', `the total gradient norm is ${total}: a gradient holds NaN or Infinity`);
}

/** The factor applied to the gradients, or null to leave them as they are. */
function clipFactor(total: number, maxNorm: number, errorIfNonfinite: boolean): number | null {
  if (!Number.isFinite(total)) {
    if (errorIfNonfinite) throw nonFinite(total);
    return null;
  }
  const coef = maxNorm / (total + 1e-6);
  return coef < 1 ? Math.fround(coef) : null;
}

/** Whether a clipping call runs on one CUDA device; records where it ran. */
function onCuda(gs: Tensor[], op: string): boolean {
  if (allOnOneCuda(gs)) {
    recordRun(op, gs[0].device);
    return true;
  }
  const devices = [...new Set(gs.map((g) => g.device))];
  recordRun(op, 'cpu', devices.some((d) => d !== 'cpu') ? `gradients on ${devices.join(', ')}: clipped on the host` : null);
  return false;
}

function normTensor(value: number, device: Device): Tensor {
  const t = emptyTensor([1], 'cpu');
  t.data[0] = value;
  return t.to(device);
}

/** clipGradNorm for both twins. */
function clipNorm(grads: readonly Tensor[], maxNorm: number, options: ClipNormOptions | undefined, async: boolean): MaybePromise<number | Tensor> {
  const gs = checkGrads(grads);
  checkLimit(maxNorm, 'maxNorm');
  const o = readClipOptions(options);
  if (onCuda(gs, 'clipGradNorm')) {
    const out = o.asTensor ? emptyTensor([1], gs[0].device) : null;
    const read = !o.asTensor || o.errorIfNonfinite;
    const total = native().cudaClipGradNorm(gs.map((g) => g.deviceBuffer), maxNorm, out ? out.deviceBuffer : null, read, async);
    return then(total, (t) => {
      gs.forEach((g) => g.bumpVersion());
      if (o.errorIfNonfinite && !Number.isFinite(t as number)) {
        if (out) out.dispose();
        throw nonFinite(t as number);
      }
      return out ?? (t as number);
    });
  }
  const host = gs.map(hostValues);
  return then(native().sumSquares(host, async), (squares) => {
    const total = Math.sqrt(squares);
    const result = o.asTensor ? normTensor(total, gs.length ? gs[0].device : 'cpu') : total;
    const f = clipFactor(total, maxNorm, o.errorIfNonfinite);
    if (f === null) return result;
    return then(native().scaleArrays(host, f, async), () => {
      gs.forEach((g, k) => writeBack(g, host[k]));
      return result;
    });
  });
}

/** Clips gradients by their global L2 norm; returns the norm before clipping. */
export async function clipGradNorm(grads: readonly Tensor[], maxNorm: number, options?: ClipNormOptions & { norm?: 'number' }): Promise<number>;
export async function clipGradNorm(grads: readonly Tensor[], maxNorm: number, options: ClipNormOptions & { norm: 'tensor' }): Promise<Tensor>;
export async function clipGradNorm(grads: readonly Tensor[], maxNorm: number, options?: ClipNormOptions): Promise<number | Tensor> {
  return clipNorm(grads, maxNorm, options, true);
}

/** `clipGradNorm` on the calling thread; returns the norm before clipping. */
export function clipGradNormSync(grads: readonly Tensor[], maxNorm: number, options?: ClipNormOptions & { norm?: 'number' }): number;
/** `clipGradNorm` on the calling thread; returns the norm before clipping as a one-element tensor. */
export function clipGradNormSync(grads: readonly Tensor[], maxNorm: number, options: ClipNormOptions & { norm: 'tensor' }): Tensor;
export function clipGradNormSync(grads: readonly Tensor[], maxNorm: number, options?: ClipNormOptions): number | Tensor {
  return clipNorm(grads, maxNorm, options, false) as number | Tensor;
}

/** clipGradValue for both twins. */
function clipValueOf(grads: readonly Tensor[], limit: number, async: boolean): MaybePromise<void> {
  const gs = checkGrads(grads);
  const v = Math.fround(checkLimit(limit, 'clipValue'));
  if (onCuda(gs, 'clipGradValue')) {
    return then(native().cudaClampBuffers(gs.map((g) => g.deviceBuffer), -v, v, async), () => gs.forEach((g) => g.bumpVersion()));
  }
  const host = gs.map(hostValues);
  return then(native().clampArrays(host, -v, v, async), () => gs.forEach((g, k) => writeBack(g, host[k])));
}

/** Clamps every gradient element to [−clipValue, clipValue]. */
export async function clipGradValue(grads: readonly Tensor[], clipValue: number): Promise<void> {
  return clipValueOf(grads, clipValue, true);
}

/** `clipGradValue` on the calling thread. */
export function clipGradValueSync(grads: readonly Tensor[], clipValue: number): void {
  clipValueOf(grads, clipValue, false);
}

/** The global L2 norm of several tensors (double accumulation), without changing them. */
export function globalNormSync(tensors: readonly Tensor[]): number {
  const ts = checkGrads(tensors);
  if (onCuda(ts, 'globalNorm')) return Math.sqrt(native().cudaSumSquares(ts.map((t) => t.deviceBuffer), false) as number);
  return Math.sqrt(native().sumSquares(ts.map(hostValues), false) as number);
}
