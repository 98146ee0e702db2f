/**
 * Linear: y = x·Wᵀ + b over the last axis (PyTorch nn.Linear), on the native matmul.
 *
 * Contract: `weight` is [outFeatures, inFeatures] and `bias` [outFeatures] (null without bias),
 * both drawn from U(−1/√in, 1/√in) like PyTorch's default init, reproducibly from `seed` (weight
 * first, then bias). `forward(x)` takes x [..., in] and returns a new y [..., out].
 * `backward(x, dy, { accumulate, dweight, dbias })` returns `{ dx, dweight, dbias }`: dx is new;
 * dweight / dbias are new, or the given tensors overwritten, or added into with `accumulate`
 * (gradient accumulation over micro-batches). Bias sums are accumulated in double.
 * On a CUDA device (`device` option) the weights, products, bias add and bias sums all run there
 * (the same bits as on the CPU for the bias parts), with no host copy.
 */
import { RnnkitError } from '../errors';
import { DeviceSpec, resolveDevice } from '../device';
import { matmul, matmulSync } from '../matmul';
import { Tensor, checkTensor, emptyTensor, tensor } from '../tensor';
import { Rng } from './random';
import { Maybe, andThen } from '../maybe';
import { cudaTrainNative } from './native-train';

export interface LinearOptions {
  inFeatures: number;
  outFeatures: number;
  /** Default true. */
  bias?: boolean;
  /** Seeds the initial weights; a random one when absent. */
  seed?: number;
  device?: DeviceSpec;
}

export interface LinearBackwardOptions {
  /** Add into dweight / dbias instead of overwriting them (needs both tensors given). */
  accumulate?: boolean;
  dweight?: Tensor | null;
  dbias?: Tensor | null;
}

export interface LinearGradients {
  dx: Tensor;
  dweight: Tensor;
  dbias: Tensor | null;
}

function argError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_ARG', message);
}

function checkSize(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 2 ** 31) {
    throw argError(`${what} must be a positive integer (got ${String(v)})`);
  }
  return v;
}

interface Plan {
  x2: Tensor;
  N: number;
}

export class Linear {
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(options: LinearOptions) {
    if (options === null || typeof options !== 'object') throw argError('Linear needs options { inFeatures, outFeatures }');
    this.inFeatures = checkSize(options.inFeatures, 'inFeatures');
    this.outFeatures = checkSize(options.outFeatures, 'outFeatures');
    if (options.bias !== undefined && typeof options.bias !== 'boolean') throw argError('bias must be a boolean');
    const seed = options.seed === undefined ? Math.floor(Math.random() * 2 ** 47) : options.seed;
    const rng = new Rng(seed);
    const bound = 1 / Math.sqrt(this.inFeatures);
    const draw = (n: number): Float32Array => {
      const a = new Float32Array(n);
      for (let k = 0; k < n; k++) a[k] = (2 * rng.uniform() - 1) * bound;
      return a;
    };
    const device = resolveDevice(options.device === undefined ? 'cpu' : options.device);
    this.weight = tensor(draw(this.outFeatures * this.inFeatures), [this.outFeatures, this.inFeatures], { device });
    this.bias = options.bias === false ? null : tensor(draw(this.outFeatures), [this.outFeatures], { device });
  }

  /** Parameters by PyTorch name. */
  parameters(): Record<string, Tensor> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  async forward(x: Tensor): Promise<Tensor> {
    const p = this.plan(x);
    const y = await matmul(p.x2, this.weight, { transB: true });
    return this.finishForward(x, y, true);
  }

  forwardSync(x: Tensor): Tensor {
    const p = this.plan(x);
    return this.finishForward(x, matmulSync(p.x2, this.weight, { transB: true }), false) as Tensor;
  }

  async backward(x: Tensor, dy: Tensor, options: LinearBackwardOptions = {}): Promise<LinearGradients> {
    const p = this.plan(x);
    const o = this.backwardPlan(p, dy, options);
    const dx = await matmul(o.dy2, this.weight);
    await matmul(o.dy2, p.x2, { transA: true, out: o.dweight, accumulate: o.accumulate });
    return this.finishBackward(x, dx, o, true);
  }

  backwardSync(x: Tensor, dy: Tensor, options: LinearBackwardOptions = {}): LinearGradients {
    const p = this.plan(x);
    const o = this.backwardPlan(p, dy, options);
    const dx = matmulSync(o.dy2, this.weight);
    matmulSync(o.dy2, p.x2, { transA: true, out: o.dweight, accumulate: o.accumulate });
    return this.finishBackward(x, dx, o, false) as LinearGradients;
  }

  private plan(x: Tensor): Plan {
    checkTensor(x, 'x');
    this.weight.assertLive('weight');
    if (x.rank < 1 || x.shape[x.rank - 1] !== this.inFeatures) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `x must be [..., ${this.inFeatures}], got [${x.shape.join(', ')}]`);
    }
    if (x.device !== this.weight.device) {
      throw new RnnkitError('ERR_RNNKIT_DEVICE', `x is on ${x.device} and the weights on ${this.weight.device}`);
    }
    const N = x.size / this.inFeatures;
    return { x2: x.reshape([N, this.inFeatures]), N };
  }

  private finishForward(x: Tensor, y2: Tensor, async: boolean): Maybe<Tensor> {
    const y = y2.reshape([...x.shape.slice(0, -1), this.outFeatures]);
    if (!this.bias) return y;
    const O = this.outFeatures;
    if (y2.device !== 'cpu') {
      return andThen(cudaTrainNative().cudaAddRows(y2.deviceBuffer, this.bias.deviceBuffer, y2.size / O, O, async), () => y);
    }
    const yv = y2.data;
    const b = this.bias.data;
    for (let r = 0; r < yv.length; r += O) for (let j = 0; j < O; j++) yv[r + j] += b[j];
    return y;
  }

  private backwardPlan(p: Plan, dy: Tensor, options: LinearBackwardOptions) {
    checkTensor(dy, 'dy');
    if (dy.size !== p.N * this.outFeatures || dy.shape[dy.rank - 1] !== this.outFeatures) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `dy must be [..., ${this.outFeatures}] with ${p.N} rows, got [${dy.shape.join(', ')}]`);
    }
    if (dy.device !== this.weight.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `dy is on ${dy.device}, the weights on ${this.weight.device}`);
    const accumulate = options.accumulate === true;
    const given = (t: Tensor | null | undefined, what: string, shape: readonly number[]): Tensor | null => {
      if (t === undefined || t === null) return null;
      checkTensor(t, what);
      if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k])) {
        throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must be [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
      }
      if (t.device !== this.weight.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `${what} must be on ${this.weight.device}`);
      return t;
    };
    let dweight = given(options.dweight, 'dweight', this.weight.shape);
    let dbias = this.bias ? given(options.dbias, 'dbias', this.bias.shape) : null;
    if (accumulate && (!dweight || (this.bias && !dbias))) throw argError('accumulate needs the dweight (and dbias) tensors to add into');
    // Fresh gradients need no initial values: the product and the bias sums overwrite them.
    dweight = dweight ?? emptyTensor(this.weight.shape, this.weight.device);
    if (this.bias && !dbias) dbias = emptyTensor(this.bias.shape, this.weight.device);
    return { dy2: dy.reshape([p.N, this.outFeatures]), accumulate, dweight, dbias };
  }

  private finishBackward(x: Tensor, dx2: Tensor, o: ReturnType<Linear['backwardPlan']>, async: boolean): Maybe<LinearGradients> {
    const result = { dx: dx2.reshape(x.shape), dweight: o.dweight, dbias: o.dbias };
    if (!o.dbias) return result;
    const O = this.outFeatures;
    if (o.dbias.device !== 'cpu') {
      return andThen(cudaTrainNative().cudaColumnSums(o.dbias.deviceBuffer, o.dy2.deviceBuffer, o.dy2.size / O, O,
        o.accumulate, async), () => result);
    }
    const dy = o.dy2.data;
    const db = o.dbias.data;
    const sums = new Float64Array(O);
    for (let r = 0; r < dy.length; r += O) for (let j = 0; j < O; j++) sums[j] += dy[r + j];
    for (let j = 0; j < O; j++) db[j] = o.accumulate ? db[j] + sums[j] : sums[j];
    return result;
  }
}
