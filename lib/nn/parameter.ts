/**
 * Parameters: the leaf tensors a Module owns and trains. A tensor becomes one through
 * `parameter()` (which also makes it require gradients); Module discovers parameters among its
 * own properties by this mark, so a frozen parameter (requiresGrad false) stays a parameter, in
 * `parameters()` and in the state dict.
 */
import { RnnkitError } from '../errors';
import { sizeProduct } from '../args';
import { Tensor, checkTensor } from '../tensor';

// A float32 array longer than this cannot be allocated (V8's typed-array limit is 2^32 − 1 bytes
// on some builds); refusing it first gives a typed error instead of a RangeError.
const MAX_PARAMETER_ELEMENTS = 2 ** 30;

/** The element count of a parameter of `shape`, refused (ERR_RNNKIT_SHAPE) before allocation when too large. */
export function parameterSize(shape: readonly number[], what: string): number {
  const n = sizeProduct(shape, what);
  if (n > MAX_PARAMETER_ELEMENTS) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} [${shape.join(', ')}] holds ${n} values, more than the ${MAX_PARAMETER_ELEMENTS} a parameter may`);
  }
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
  return t instanceof Tensor && marked.has(t);
}
