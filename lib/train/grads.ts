/**
 * Gradients of parameters: what the optimizers and the clipping functions read when they are
 * given `model.parameters()` (tensors that require gradients) instead of gradient tensors.
 */
import { Tensor } from '../tensor';
import { kernelsFor } from '../nn/kernels';
import { readBoolean, readOptions } from '../args';

/** Each tensor that requires gradients stands for its `.grad` (skipped when null); others are gradients themselves. */
export function gradsOf(tensors: readonly Tensor[]): Tensor[] {
  const out: Tensor[] = [];
  for (const t of tensors) {
    if (!t.requiresGrad) out.push(t);
    else if (t.grad) out.push(t.grad);
  }
  return out;
}

/** Zeroes the `.grad` of each tensor in place, or sets it to null with `setToNone`. */
export function zeroGrads(tensors: readonly Tensor[], options?: { setToNone?: boolean }): void {
  const setToNone = readBoolean(readOptions(options, ['setToNone'], 'zeroGrad options').setToNone, 'setToNone', false);
  for (const t of tensors) {
    if (!t.grad) continue;
    if (setToNone) t.grad = null;
    else kernelsFor(t.grad.device).fill(t.grad, 0);
  }
}
