/**
 * Linear: y = x·Wᵀ + b over the last axis (PyTorch nn.Linear), on the native matmul.
 *
 * Contract: `weight` is [outFeatures, inFeatures] and `bias` [outFeatures] (null without bias),
 * both drawn from U(−1/√in, 1/√in) like PyTorch's default init, reproducibly from `seed` (weight
 * first, then bias). `forward(x)` takes x [..., in] and returns a new y [..., out].
 * `backward(x, dy, { accumulate, dweight, dbias })` returns `{ dx, dweight, dbias }`: dx is new;
 * dweight / dbias are new, or the given tensors overwritten, or added into with `accumulate`
 * (gradient accumulation over micro-batches). Bias sums are accumulated in double. The bias add
 * and the bias gradient run the native kernels of lib/nn/kernels.ts; `linearForward` and
 * `linearBackward` are the same computation on tensors the caller owns (nn.Linear's parameters).
 */
import { RnnkitError } from '../errors';
import { DeviceSpec, resolveDevice } from '../device';
import {
  argError, checkHostAllocation, readBoolean, readInteger, readOptions, readRequiredOptions, readSeed, readTensorOrNull, sizeProduct,
} from '../args';
import { matmul, matmulSync } from '../matmul';
import { Tensor, checkTensor, emptyTensor, tensor } from '../tensor';
import { kernelsFor } from '../nn/kernels';
import '../nn/kernels-cuda';  // Linear's bias add and sums run on CUDA when the weights are there
import { MaybePromise, then } from '../nn/maybe';
import { Rng, randomSeed } from './random';

/** Options of Linear (and of nn.Linear). */
export interface LinearOptions {
  /** Input features I. */
  inFeatures: number;
  /** Output features O. */
  outFeatures: number;
  /** Default true. */
  bias?: boolean;
  /** Seeds the initial weights; a random one when absent. */
  seed?: number;
  /** Where weight and bias live (default 'cpu'). */
  device?: DeviceSpec;
}

/** Where Linear's backward writes the weight gradients, and whether it adds into them. */
export interface LinearBackwardOptions {
  /** Add into dweight / dbias instead of overwriting them (needs both tensors given). */
  accumulate?: boolean;
  /** Write (or add) the weight gradient into this [O, I] tensor. */
  dweight?: Tensor | null;
  /** Write (or add) the bias gradient into this [O] tensor. */
  dbias?: Tensor | null;
}

/** What Linear's backward returns. */
export interface LinearGradients {
  /** dL/dx, the shape of x. */
  dx: Tensor;
  /** dL/dweight, [O, I]. */
  dweight: Tensor;
  /** dL/dbias, [O]; null without a bias. */
  dbias: Tensor | null;
}

const OPTION_KEYS = ['inFeatures', 'outFeatures', 'bias', 'seed', 'device'] as const;
const BACKWARD_KEYS = ['accumulate', 'dweight', 'dbias'] as const;
const readFeatures = (v: unknown, what: string): number => readInteger(v, what, 1, 2 ** 31);

/** Weight then bias values drawn from U(−1/√in, 1/√in) with `seed` (PyTorch's default init). */
export function linearInit(inFeatures: number, outFeatures: number, bias: boolean, seed: number): { weight: Float32Array; bias: Float32Array | null } {
  const rng = new Rng(seed);
  const bound = 1 / Math.sqrt(inFeatures);
  const draw = (n: number): Float32Array => {
    const a = new Float32Array(n);
    for (let k = 0; k < n; k++) a[k] = (2 * rng.uniform() - 1) * bound;
    return a;
  };
  const w = draw(outFeatures * inFeatures);
  return { weight: w, bias: bias ? draw(outFeatures) : null };
}

/** x [..., in] as rows [N, in], after checking it against the weight. */
function rowsOf(x: Tensor, weight: Tensor): { x2: Tensor; N: number } {
  checkTensor(x, 'x');
  weight.assertLive('weight');
  const inFeatures = weight.shape[1];
  if (x.rank < 1 || x.shape[x.rank - 1] !== inFeatures) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `x must be [..., ${inFeatures}], got [${x.shape.join(', ')}]`);
  }
  if (x.device !== weight.device) {
    throw new RnnkitError('ERR_RNNKIT_DEVICE', `x is on ${x.device} and the weights on ${weight.device}`);
  }
  const N = x.size / inFeatures;
  return { x2: x.detach().reshape([N, inFeatures]), N };
}

/** y = x·Wᵀ + b as a new tensor [..., out]. */
export function linearForward(x: Tensor, weight: Tensor, bias: Tensor | null, async: boolean): MaybePromise<Tensor> {
  const { x2, N } = rowsOf(x, weight);
  const outFeatures = weight.shape[0];
  const shape = [...x.shape.slice(0, -1), outFeatures];
  const product = async ? matmul(x2, weight, { transB: true }) : matmulSync(x2, weight, { transB: true });
  return then(product, (y2) => {
    if (!bias) return y2.reshape(shape);
    return then(kernelsFor(y2.device).broadcast('add', y2, bias, N, async), (y) => y.reshape(shape));
  });
}

/** The gradients of y = x·Wᵀ + b (dweight / dbias written, or added into with `accumulate`). */
export function linearBackward(x: Tensor, dy: Tensor, weight: Tensor, bias: Tensor | null,
  options: LinearBackwardOptions | undefined, async: boolean): MaybePromise<LinearGradients> {
  const o = readOptions(options, BACKWARD_KEYS, 'Linear backward options');
  const { x2, N } = rowsOf(x, weight);
  const outFeatures = weight.shape[0];
  checkTensor(dy, 'dy');
  if (dy.size !== N * outFeatures || dy.shape[dy.rank - 1] !== outFeatures) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `dy must be [..., ${outFeatures}] with ${N} rows, got [${dy.shape.join(', ')}]`);
  }
  if (dy.device !== weight.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `dy is on ${dy.device}, the weights on ${weight.device}`);
  const accumulate = readBoolean(o.accumulate, 'accumulate', false);
  const given = (v: unknown, what: string, shape: readonly number[]): Tensor | null => {
    const t = readTensorOrNull(v, what, shape);
    if (t && t.device !== weight.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `${what} must be on ${weight.device}`);
    return t;
  };
  const dweightGiven = given(o.dweight, 'dweight', weight.shape);
  const dbiasGiven = bias ? given(o.dbias, 'dbias', bias.shape) : null;
  if (accumulate && (!dweightGiven || (bias && !dbiasGiven))) throw argError('accumulate needs the dweight (and dbias) tensors to add into');
  // A fresh gradient needs no initial values: the product overwrites it.
  const dweight = dweightGiven ?? emptyTensor(weight.shape, weight.device);
  const dy2 = dy.detach().reshape([N, outFeatures]);
  const dx = async ? matmul(dy2, weight) : matmulSync(dy2, weight);
  return then(dx, (dx2) => {
    const dw = async ? matmul(dy2, x2, { transA: true, out: dweight, accumulate })
      : matmulSync(dy2, x2, { transA: true, out: dweight, accumulate });
    return then(dw, () => {
      const result = (dbias: Tensor | null): LinearGradients => ({ dx: dx2.reshape(x.shape), dweight, dbias });
      if (!bias) return result(null);
      // dbias = Σ over rows of dy (double sums), written or added into.
      const k = kernelsFor(dy.device);
      if (dbiasGiven && !accumulate) k.fill(dbiasGiven, 0);
      return then(k.sumAxis(dy2, null, 1, N, outFeatures, 1, dbiasGiven, bias.shape, async), result);
    });
  });
}

/** The op-level fully connected layer: owns weight and bias, forward and backward by hand (nn.Linear records them). */
export class Linear {
  /** Input features I. */
  readonly inFeatures: number;
  /** Output features O. */
  readonly outFeatures: number;
  /** The weight, [O, I] (PyTorch's layout), drawn from U(−1/√I, 1/√I). */
  readonly weight: Tensor;
  /** The bias, [O], or null. */
  readonly bias: Tensor | null;

  /**
   * Draws the weight and bias from `seed` (U(−1/√I, 1/√I), as PyTorch does) on `device` (default
   * the CPU). Throws ERR_RNNKIT_ARG naming a bad option, ERR_RNNKIT_OOM when they would not fit.
   */
  constructor(options: LinearOptions) {
    const o = readRequiredOptions(options, OPTION_KEYS, 'Linear options', 'Linear needs options { inFeatures, outFeatures }');
    this.inFeatures = readFeatures(o.inFeatures, 'inFeatures');
    this.outFeatures = readFeatures(o.outFeatures, 'outFeatures');
    const bias = readBoolean(o.bias, 'bias', true);
    checkHostAllocation('new Linear', [
      { what: `the weight [${this.outFeatures}, ${this.inFeatures}]`, floats: sizeProduct([this.outFeatures, this.inFeatures], 'the weight') },
      { what: 'the bias', floats: bias ? this.outFeatures : 0 },
    ]);
    const seed = readSeed(o.seed, 'seed', randomSeed());
    const init = linearInit(this.inFeatures, this.outFeatures, bias, seed);
    const device = resolveDevice(o.device === undefined ? 'cpu' : (o.device as DeviceSpec));
    this.weight = tensor(init.weight, [this.outFeatures, this.inFeatures], { device });
    this.bias = init.bias ? tensor(init.bias, [this.outFeatures], { device }) : null;
  }

  /** Parameters by PyTorch name. */
  parameters(): Record<string, Tensor> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  /** y = x · weightᵀ + bias over the last axis of x (any leading axes), off the event loop. */
  async forward(x: Tensor): Promise<Tensor> {
    return linearForward(x, this.weight, this.bias, true);
  }

  /** `forward` on the calling thread. */
  forwardSync(x: Tensor): Tensor {
    return linearForward(x, this.weight, this.bias, false) as Tensor;
  }

  /** `{ dx, dweight, dbias }` for the forward's input x and dL/dy, off the event loop. */
  async backward(x: Tensor, dy: Tensor, options?: LinearBackwardOptions): Promise<LinearGradients> {
    return linearBackward(x, dy, this.weight, this.bias, options, true);
  }

  /** `backward` on the calling thread. */
  backwardSync(x: Tensor, dy: Tensor, options?: LinearBackwardOptions): LinearGradients {
    return linearBackward(x, dy, this.weight, this.bias, options, false) as LinearGradients;
  }
}
