/**
 * add and mul: elementwise a + b and a · b, recorded for backward. Each operand is a Tensor or a
 * number (at least one a Tensor). Two tensors have the same shape, or one's shape is a trailing
 * part of the other's (a bias [H] with activations [T, B, H], a scalar tensor [] with anything):
 * the smaller repeats over the leading axes, and its gradient is the sum over them (in double).
 * The result has the larger shape. Native kernels (nn_elementwise.h, nn_reduce.h) forward and
 * backward.
 */
import { RnnkitError } from '../../errors';
import { Tensor, checkTensor } from '../../tensor';
import { InputGrad, record, shouldRecord } from '../engine';
import { kernelsFor } from '../kernels';
import { MaybePromise, all, then } from '../maybe';

/** An operand of `add` / `mul`: a tensor, or a number applied to every element. */
export type Operand = Tensor | number;

function isTrailing(small: readonly number[], big: readonly number[]): boolean {
  if (small.length > big.length) return false;
  const skip = big.length - small.length;
  return small.every((d, k) => d === big[skip + k]);
}

function checkOperand(v: unknown, what: string): void {
  if (typeof v === 'number') return;
  checkTensor(v, what);
}

/** a·scale + shift for a tensor and a number, recorded. */
function affine(x: Tensor, scale: number, shift: number, name: string, async: boolean): MaybePromise<Tensor> {
  const recording = shouldRecord([x]);
  return then(kernelsFor(x.device).affine(x, scale, shift, async), (y) => {
    if (recording) {
      record(name, [x], [y], (grads, ctx) => {
        const g = grads[0] as Tensor;
        return scale === 1 ? [g] : then(kernelsFor(g.device).affine(g, scale, 0, ctx.async), (d) => [d]);
      });
    }
    return y;
  });
}

function binary(op: 'add' | 'mul', a: Operand, b: Operand, async: boolean): MaybePromise<Tensor> {
  checkOperand(a, 'a');
  checkOperand(b, 'b');
  if (typeof a === 'number' && typeof b === 'number') throw new RnnkitError('ERR_RNNKIT_ARG', `${op} needs at least one Tensor`);
  if (typeof a === 'number' || typeof b === 'number') {
    const [t, v] = typeof a === 'number' ? [b as Tensor, a] : [a, b as number];
    return op === 'add' ? affine(t, 1, v, op, async) : affine(t, v, 0, op, async);
  }
  if (a.device !== b.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `${op}: a is on ${a.device} and b on ${b.device}`);
  let swapped: boolean;
  if (isTrailing(b.shape, a.shape)) swapped = false;
  else if (isTrailing(a.shape, b.shape)) swapped = true;
  else throw new RnnkitError('ERR_RNNKIT_SHAPE', `${op}: shapes [${a.shape.join(', ')}] and [${b.shape.join(', ')}] do not broadcast (one must end the other)`);
  const big = swapped ? b : a;
  const small = swapped ? a : b;
  const m = small.size;
  const rows = m === 0 ? 0 : big.size / m;
  const recording = shouldRecord([a, b]);
  const k = kernelsFor(big.device);
  const forward = big.size === 0 ? Tensor.fromCpu(new Float32Array(0), big.shape).to(big.device) : k.broadcast(op, big, small, rows, async);
  return then(forward, (y) => {
    if (recording) {
      const needBig = swapped ? 1 : 0;
      record(op, [a, b], [y], (grads, ctx) => {
        const g = grads[0] as Tensor;
        const kg = kernelsFor(g.device);
        const out: Array<MaybePromise<InputGrad>> = [null, null];
        if (ctx.needs[needBig]) out[needBig] = op === 'add' ? g : kg.broadcast('mul', g, small, rows, ctx.async);
        if (ctx.needs[1 - needBig]) {
          const w = op === 'mul' ? big : null;
          out[1 - needBig] = rows === 1 && op === 'add' ? g
            : rows === 1 ? kg.broadcast('mul', g, big, 1, ctx.async)
              : kg.sumAxis(g, w, 1, rows, m, 1, null, small.shape, ctx.async);
        }
        return all(out);
      }, { saved: op === 'mul' ? [a, b] : [] });
    }
    return y;
  });
}

/** a + b (see the broadcasting rule above), off the event loop. */
export async function add(a: Operand, b: Operand): Promise<Tensor> {
  return binary('add', a, b, true);
}

/** a + b on the calling thread. */
export function addSync(a: Operand, b: Operand): Tensor {
  return binary('add', a, b, false) as Tensor;
}

/** a · b elementwise (see the broadcasting rule above), off the event loop. */
export async function mul(a: Operand, b: Operand): Promise<Tensor> {
  return binary('mul', a, b, true);
}

/** a · b on the calling thread. */
export function mulSync(a: Operand, b: Operand): Tensor {
  return binary('mul', a, b, false) as Tensor;
}
