/**
 * Linear: y = x·Wᵀ + b over the last axis (PyTorch nn.Linear), on the native matmul.
 *
 * Contract: `weight` is [outFeatures, inFeatures] and `bias` [outFeatures] (null without bias),
 * both drawn from U(−1/√in, 1/√in) like PyTorch's default init, reproducibly from `seed` (weight
 * first, then bias). `forward(x)` takes x [..., in] and returns a new y [..., out].
 * `backward(x, dy, { accumulate, dweight, dbias })` returns `{ dx, dweight, dbias }`: dx is new;
 * dweight / dbias are new, or the given tensors overwritten, or added into with `accumulate`
 * (gradient accumulation over micro-batches). Bias sums are accumulated in double.
 */
import { RnnkitError } from '../errors';
import { DeviceSpec, resolveDevice } from '../device';
import { argError, readBoolean, readInteger, readOptions, readRequiredOptions, readSeed, readTensorOrNull } from '../args';
import { matmul, matmulSync } from '../matmul';
import { Tensor, checkTensor, tensor } from '../tensor';
import { Rng } from './random';
import { hostValues, writeBack } from './native-train';

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

const OPTION_KEYS = ['inFeatures', 'outFeatures', 'bias', 'seed', 'device'] as const;
const BACKWARD_KEYS = ['accumulate', 'dweight', 'dbias'] as const;
const readFeatures = (v: unknown, what: string): number => readInteger(v, what, 1, 2 ** 31);

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
    const o = readRequiredOptions(options, OPTION_KEYS, 'Linear options', 'Linear needs options { inFeatures, outFeatures }');
    this.inFeatures = readFeatures(o.inFeatures, 'inFeatures');
    this.outFeatures = readFeatures(o.outFeatures, 'outFeatures');
    const bias = readBoolean(o.bias, 'bias', true);
    const seed = o.seed === undefined ? Math.floor(Math.random() * 2 ** 47) : readSeed(o.seed, 'seed');
    const rng = new Rng(seed);
    const bound = 1 / Math.sqrt(this.inFeatures);
    const draw = (n: number): Float32Array => {
      const a = new Float32Array(n);
      for (let k = 0; k < n; k++) a[k] = (2 * rng.uniform() - 1) * bound;
      return a;
    };
    const device = resolveDevice(o.device === undefined ? 'cpu' : (o.device as DeviceSpec));
    this.weight = tensor(draw(this.outFeatures * this.inFeatures), [this.outFeatures, this.inFeatures], { device });
    this.bias = bias ? tensor(draw(this.outFeatures), [this.outFeatures], { device }) : null;
  }

  /** Parameters by PyTorch name. */
  parameters(): Record<string, Tensor> {
    return this.bias ? { weight: this.weight, bias: this.bias } : { weight: this.weight };
  }

  async forward(x: Tensor): Promise<Tensor> {
    const p = this.plan(x);
    const y = await matmul(p.x2, this.weight, { transB: true });
    return this.finishForward(x, y);
  }

  forwardSync(x: Tensor): Tensor {
    const p = this.plan(x);
    return this.finishForward(x, matmulSync(p.x2, this.weight, { transB: true }));
  }

  async backward(x: Tensor, dy: Tensor, options?: LinearBackwardOptions): Promise<LinearGradients> {
    const p = this.plan(x);
    const o = this.backwardPlan(p, dy, options);
    const dx = await matmul(o.dy2, this.weight);
    await matmul(o.dy2, p.x2, { transA: true, out: o.dweight, accumulate: o.accumulate });
    return this.finishBackward(x, dx, o);
  }

  backwardSync(x: Tensor, dy: Tensor, options?: LinearBackwardOptions): LinearGradients {
    const p = this.plan(x);
    const o = this.backwardPlan(p, dy, options);
    const dx = matmulSync(o.dy2, this.weight);
    matmulSync(o.dy2, p.x2, { transA: true, out: o.dweight, accumulate: o.accumulate });
    return this.finishBackward(x, dx, o);
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

  private finishForward(x: Tensor, y2: Tensor): Tensor {
    if (this.bias) {
      const y = hostValues(y2);
      const b = hostValues(this.bias);
      const O = this.outFeatures;
      for (let r = 0; r < y.length; r += O) for (let j = 0; j < O; j++) y[r + j] += b[j];
      writeBack(y2, y);
    }
    return y2.reshape([...x.shape.slice(0, -1), this.outFeatures]);
  }

  private backwardPlan(p: Plan, dy: Tensor, options: LinearBackwardOptions | undefined) {
    const o = readOptions(options, BACKWARD_KEYS, 'Linear backward options');
    checkTensor(dy, 'dy');
    if (dy.size !== p.N * this.outFeatures || dy.shape[dy.rank - 1] !== this.outFeatures) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `dy must be [..., ${this.outFeatures}] with ${p.N} rows, got [${dy.shape.join(', ')}]`);
    }
    if (dy.device !== this.weight.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `dy is on ${dy.device}, the weights on ${this.weight.device}`);
    const accumulate = readBoolean(o.accumulate, 'accumulate', false);
    const given = (v: unknown, what: string, shape: readonly number[]): Tensor | null => {
      const t = readTensorOrNull(v, what, shape);
      if (t && t.device !== this.weight.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `${what} must be on ${this.weight.device}`);
      return t;
    };
    let dweight = given(o.dweight, 'dweight', this.weight.shape);
    let dbias = this.bias ? given(o.dbias, 'dbias', this.bias.shape) : null;
    if (accumulate && (!dweight || (this.bias && !dbias))) throw argError('accumulate needs the dweight (and dbias) tensors to add into');
    dweight = dweight ?? tensor(new Float32Array(this.weight.size), this.weight.shape, { device: this.weight.device });
    if (this.bias && !dbias) dbias = tensor(new Float32Array(this.outFeatures), this.bias.shape, { device: this.weight.device });
    return { dy2: dy.reshape([p.N, this.outFeatures]), accumulate, dweight, dbias };
  }

  private finishBackward(x: Tensor, dx2: Tensor, o: ReturnType<Linear['backwardPlan']>): LinearGradients {
    if (o.dbias) {
      const dy = hostValues(o.dy2);
      const db = hostValues(o.dbias);
      const O = this.outFeatures;
      const sums = new Float64Array(O);
      for (let r = 0; r < dy.length; r += O) for (let j = 0; j < O; j++) sums[j] += dy[r + j];
      for (let j = 0; j < O; j++) db[j] = o.accumulate ? db[j] + sums[j] : sums[j];
      writeBack(o.dbias, db);
    }
    return { dx: dx2.reshape(x.shape), dweight: o.dweight, dbias: o.dbias };
  }
}
