/**
 * concat, narrow and reshape, recorded for backward. concat joins tensors of one rank along `axis`
 * (all other sizes equal) with native block copies; its backward cuts the gradient back into
 * pieces. narrow copies `length` entries of one axis from `start` (e.g. the last layer's states of
 * a recurrent module's hy); its backward places the gradient among zeros. reshape is a view (no
 * copy, no kernel): synchronous, with one size given as −1 inferred.
 */
import { RnnkitError } from '../../errors';
import { Tensor, checkTensor } from '../../tensor';
import { describe, readArray, readGuarded } from '../../args';
import { record, shouldRecord } from '../engine';
import { kernelsFor } from '../kernels';
import { MaybePromise, then } from '../maybe';

const product = (dims: readonly number[]): number => dims.reduce((a, b) => a * b, 1);

function concatenate(tensors: readonly Tensor[], axisOption: number, async: boolean): MaybePromise<Tensor> {
  const list = readGuarded(() => Array.isArray(tensors), 'tensors') ? readArray(tensors, 'tensors') : [];
  if (list.length === 0) throw new RnnkitError('ERR_RNNKIT_ARG', 'concat needs a non-empty array of tensors');
  tensors = list.map((t, k) => checkTensor(t, `tensors[${k}]`));
  const first = tensors[0];
  const rank = first.rank;
  if (rank === 0) throw new RnnkitError('ERR_RNNKIT_SHAPE', 'concat needs tensors of rank >= 1');
  if (typeof axisOption !== 'number' || !Number.isInteger(axisOption) || axisOption < -rank || axisOption >= rank) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `axis must be an integer in [${-rank}, ${rank}) (got ${describe(axisOption)})`);
  }
  const axis = axisOption < 0 ? axisOption + rank : axisOption;
  tensors.forEach((t: Tensor, k: number) => {
    if (t.device !== first.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `tensors[${k}] is on ${t.device}, tensors[0] on ${first.device}`);
    if (t.rank !== rank || t.shape.some((d: number, i: number) => i !== axis && d !== first.shape[i])) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `tensors[${k}] [${t.shape.join(', ')}] does not match [${first.shape.join(', ')}] outside axis ${axis}`);
    }
  });
  const outer = product(first.shape.slice(0, axis));
  const shape = first.shape.slice();
  shape[axis] = tensors.reduce((s, t) => s + t.shape[axis], 0);
  const recording = shouldRecord(tensors);
  const shapes = tensors.map((t) => t.shape);
  return then(kernelsFor(first.device).concat(tensors, outer, shape, async), (y) => {
    if (recording) {
      record('concat', tensors, [y], (grads, ctx) => kernelsFor(y.device).split(grads[0] as Tensor, outer, shapes, ctx.async));
    }
    return y;
  });
}

/** The tensors joined along `axis` (default 0; negative counts from the end), off the event loop. */
export async function concat(tensors: readonly Tensor[], axis = 0): Promise<Tensor> {
  return concatenate(tensors, axis, true);
}

/** `concat` on the calling thread. */
export function concatSync(tensors: readonly Tensor[], axis = 0): Tensor {
  return concatenate(tensors, axis, false) as Tensor;
}

function narrowOf(x: Tensor, axisOption: number, start: number, length: number, async: boolean): MaybePromise<Tensor> {
  checkTensor(x, 'x');
  const rank = x.rank;
  if (typeof axisOption !== 'number' || !Number.isInteger(axisOption) || axisOption < -rank || axisOption >= rank) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `axis must be an integer in [${-rank}, ${rank}) (got ${describe(axisOption)})`);
  }
  const axis = axisOption < 0 ? axisOption + rank : axisOption;
  const n = x.shape[axis];
  if (typeof start !== 'number' || typeof length !== 'number' || !Number.isInteger(start) || !Number.isInteger(length) ||
    start < 0 || length < 0 || start + length > n) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `narrow: [${describe(start)}, ${describe(start)} + ${describe(length)}) is not inside axis ${axis} of size ${n}`);
  }
  const outer = product(x.shape.slice(0, axis));
  const piece = (len: number): number[] => x.shape.map((d, i) => (i === axis ? len : d));
  const shapes = [piece(start), piece(length), piece(n - start - length)];
  const recording = shouldRecord([x]);
  const k = kernelsFor(x.device);
  return then(k.split(x, outer, shapes, async), (parts) => {
    const y = parts[1];
    if (recording) {
      record('narrow', [x], [y], (grads, ctx) => {
        const zeros = (shape: number[]): Tensor => Tensor.fromCpu(new Float32Array(product(shape)), shape).to(x.device);
        const pieces = [zeros(shapes[0]), grads[0] as Tensor, zeros(shapes[2])];
        return then(kernelsFor(x.device).concat(pieces, outer, x.shape, ctx.async), (dx) => [dx]);
      });
    }
    return y;
  });
}

/** Entries [start, start + length) of `axis` (negative counts from the end) as a new tensor, off the event loop. */
export async function narrow(x: Tensor, axis: number, start: number, length: number): Promise<Tensor> {
  return narrowOf(x, axis, start, length, true);
}

/** `narrow` on the calling thread. */
export function narrowSync(x: Tensor, axis: number, start: number, length: number): Tensor {
  return narrowOf(x, axis, start, length, false) as Tensor;
}

/** A view of x with another shape of the same size (one size may be −1: inferred). */
export function reshape(x: Tensor, given: readonly number[]): Tensor {
  checkTensor(x, 'x');
  if (!readGuarded(() => Array.isArray(given), 'shape')) throw new RnnkitError('ERR_RNNKIT_SHAPE', 'shape must be an array of sizes');
  const shape = readArray(given, 'shape', 64) as number[];
  if (!shape.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= -1)) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `shape [${shape.map(describe).join(', ')}] must hold integers >= 0, or one -1`);
  }
  const free = shape.filter((d) => d === -1).length;
  if (free > 1) throw new RnnkitError('ERR_RNNKIT_SHAPE', 'only one size of a shape can be -1');
  if (free === 0) return x.reshape(shape);
  const known = product(shape.filter((d) => d !== -1));
  if (known === 0 || x.size % known !== 0) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `cannot reshape [${x.shape.join(', ')}] to [${shape.join(', ')}]`);
  }
  return x.reshape(shape.map((d) => (d === -1 ? x.size / known : d)));
}
