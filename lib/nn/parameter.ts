/**
 * Parameters: the leaf tensors a Module owns and trains. A tensor becomes one through
 * `parameter()` (which also makes it require gradients); Module discovers parameters among its
 * own properties by this mark, so a frozen parameter (requiresGrad false) stays a parameter, in
 * `parameters()` and in the state dict.
 */
import { RnnkitError } from '../errors';
import { checkHostAllocation, sizeProduct } from '../args';
import { Tensor, checkTensor, isTensor } from '../tensor';

/**
 * The element count of a parameter of `shape`, checked before allocation by the one limit
 * mechanism of lib/args.ts: ERR_RNNKIT_SHAPE beyond the safe integers, ERR_RNNKIT_OOM when
 * `copies` arrays of it (a weight and a bias, say) would pass the allocation limit.
 */
export function parameterSize(shape: readonly number[], what: string, copies = 1): number {
  const n = sizeProduct(shape, what);
  checkHostAllocation('the parameters of a module', [{ what: `${what} [${shape.join(', ')}]`, floats: n * copies }]);
  return n;
}

const marked = new WeakSet<Tensor>();

/** Marks a leaf tensor as a module parameter (requiresGrad = true) and returns it. */
export function parameter(t: Tensor): Tensor {
  checkTensor(t, 'parameter');
  if (!t.isLeaf) throw new RnnkitError('ERR_RNNKIT_ARG', 'a parameter must be a leaf tensor (detach() a computed one)');
  t.requiresGrad = true;
  marked.add(t);
  return t;
}

/** Whether `t` was made a parameter. */
export function isParameter(t: unknown): t is Tensor {
  return isTensor(t) && marked.has(t);
}
