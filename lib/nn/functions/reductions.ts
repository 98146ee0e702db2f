/**
 * sum and mean over all elements (a scalar []) or over one axis (removed, or kept as size 1 with
 * keepDims), recorded for backward (the gradient spread back over the reduced axis). Sums are
 * taken in double in a fixed order (native/kernels/nn_reduce.h), the same for every thread count.
 */
import { RnnkitError } from '../../errors';
import { Tensor, checkTensor } from '../../tensor';
import { record, shouldRecord } from '../engine';
import { kernelsFor } from '../kernels';
import { MaybePromise, then } from '../maybe';
import { readBoolean, readOptions } from '../../args';

/** Options of sum and mean. */
export interface ReduceOptions {
  /** The axis to reduce (negative counts from the end); all axes when absent. */
  axis?: number;
  /** Keep the reduced axis (or every axis) with size 1. Default false. */
  keepDims?: boolean;
}

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

function reduce(name: 'sum' | 'mean', x: Tensor, options: ReduceOptions | undefined, async: boolean): MaybePromise<Tensor> {
  checkTensor(x, 'x');
  const o = readOptions(options, ['axis', 'keepDims'], `${name} options`);
  const keepDims = readBoolean(o.keepDims, 'keepDims', false);
  let outer: number, len: number, inner: number, shape: number[];
  if (o.axis === undefined) {
    [outer, len, inner] = [1, x.size, 1];
    shape = keepDims ? x.shape.map(() => 1) : [];
  } else {
    const a = o.axis;
    if (typeof a !== 'number' || !Number.isInteger(a) || a < -x.rank || a >= x.rank) {
      throw new RnnkitError('ERR_RNNKIT_ARG', `axis must be an integer in [${-x.rank}, ${x.rank}) (got ${String(a)})`);
    }
    const axis = a < 0 ? a + x.rank : a;
    [outer, len, inner] = [product(x.shape.slice(0, axis)), x.shape[axis], product(x.shape.slice(axis + 1))];
    shape = x.shape.slice();
    if (keepDims) shape[axis] = 1;
    else shape.splice(axis, 1);
  }
  const scale = name === 'mean' ? 1 / len : 1;
  const recording = shouldRecord([x]);
  return then(kernelsFor(x.device).sumAxis(x, null, outer, len, inner, scale, null, shape, async), (y) => {
    if (recording) {
      record(name, [x], [y], (grads, ctx) =>
        then(kernelsFor(x.device).broadcastAxis(grads[0] as Tensor, outer, len, inner, scale, x.shape, ctx.async), (dx) => [dx]));
    }
    return y;
  });
}

/** The sum of x's elements (or over `axis`), off the event loop. */
export async function sum(x: Tensor, options?: ReduceOptions): Promise<Tensor> {
  return reduce('sum', x, options, true);
}

/** `sum` on the calling thread. */
export function sumSync(x: Tensor, options?: ReduceOptions): Tensor {
  return reduce('sum', x, options, false) as Tensor;
}

/** The mean of x's elements (or over `axis`), off the event loop. */
export async function mean(x: Tensor, options?: ReduceOptions): Promise<Tensor> {
  return reduce('mean', x, options, true);
}

/** `mean` on the calling thread. */
export function meanSync(x: Tensor, options?: ReduceOptions): Tensor {
  return reduce('mean', x, options, false) as Tensor;
}
