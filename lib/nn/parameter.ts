/**
 * Parameters: the leaf tensors a Module owns and trains. A tensor becomes one through
 * `parameter()` (which also makes it require gradients); Module discovers parameters among its
 * own properties by this mark, so a frozen parameter (requiresGrad false) stays a parameter, in
 * `parameters()` and in the state dict.
 */
import { RnnkitError } from '../errors';
import { Tensor, checkTensor } from '../tensor';

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
  return t instanceof Tensor && marked.has(t);
}
