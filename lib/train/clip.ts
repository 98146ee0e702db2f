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
 */
import { RnnkitError } from '../errors';
import { argError, readBoolean, readNumber, readOptions } from '../args';
import { Tensor, checkTensor } from '../tensor';
import { native } from '../native';
import { hostValues, writeBack } from './native-train';
import { gradsOf } from './grads';

export interface ClipNormOptions {
  errorIfNonfinite?: boolean;
}

function checkGrads(grads: readonly Tensor[]): Tensor[] {
  if (!Array.isArray(grads)) throw argError('grads must be an array of tensors');
  return gradsOf(grads.map((g, k) => checkTensor(g, `grads[${k}]`)));
}

const checkLimit = (v: unknown, what: string): number => readNumber(v, what, { min: 0 });
const readErrorIfNonfinite = (options: ClipNormOptions | undefined): boolean =>
  readBoolean(readOptions(options, ['errorIfNonfinite'], 'clipGradNorm options').errorIfNonfinite, 'errorIfNonfinite', false);

/** The factor applied to the gradients, or null to leave them as they are. */
function clipFactor(total: number, maxNorm: number, errorIfNonfinite: boolean): number | null {
  if (!Number.isFinite(total)) {
    if (errorIfNonfinite) {
      throw new RnnkitError('ERR_RNNKIT_NONFINITE', `the total gradient norm is ${total}: a gradient holds NaN or Infinity`);
    }
    return null;
  }
  const coef = maxNorm / (total + 1e-6);
  return coef < 1 ? Math.fround(coef) : null;
}

/** Clips gradients by their global L2 norm; returns the norm before clipping. */
export async function clipGradNorm(grads: readonly Tensor[], maxNorm: number, options?: ClipNormOptions): Promise<number> {
  const gs = checkGrads(grads);
  checkLimit(maxNorm, 'maxNorm');
  const errorIfNonfinite = readErrorIfNonfinite(options);
  const host = gs.map(hostValues);
  const total = Math.sqrt(await native().sumSquares(host, true));
  const f = clipFactor(total, maxNorm, errorIfNonfinite);
  if (f !== null) {
    await native().scaleArrays(host, f, true);
    gs.forEach((g, k) => writeBack(g, host[k]));
  }
  return total;
}

export function clipGradNormSync(grads: readonly Tensor[], maxNorm: number, options?: ClipNormOptions): number {
  const gs = checkGrads(grads);
  checkLimit(maxNorm, 'maxNorm');
  const errorIfNonfinite = readErrorIfNonfinite(options);
  const host = gs.map(hostValues);
  const total = Math.sqrt(native().sumSquares(host, false) as number);
  const f = clipFactor(total, maxNorm, errorIfNonfinite);
  if (f !== null) {
    native().scaleArrays(host, f, false);
    gs.forEach((g, k) => writeBack(g, host[k]));
  }
  return total;
}

/** Clamps every gradient element to [−clipValue, clipValue]. */
export async function clipGradValue(grads: readonly Tensor[], clipValue: number): Promise<void> {
  const gs = checkGrads(grads);
  const v = Math.fround(checkLimit(clipValue, 'clipValue'));
  const host = gs.map(hostValues);
  await native().clampArrays(host, -v, v, true);
  gs.forEach((g, k) => writeBack(g, host[k]));
}

export function clipGradValueSync(grads: readonly Tensor[], clipValue: number): void {
  const gs = checkGrads(grads);
  const v = Math.fround(checkLimit(clipValue, 'clipValue'));
  const host = gs.map(hostValues);
  native().clampArrays(host, -v, v, false);
  gs.forEach((g, k) => writeBack(g, host[k]));
}

/** The global L2 norm of several tensors (double accumulation), without changing them. */
export function globalNormSync(tensors: readonly Tensor[]): number {
  return Math.sqrt(native().sumSquares(checkGrads(tensors).map(hostValues), false) as number);
}
