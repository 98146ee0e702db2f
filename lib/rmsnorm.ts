/**
 * RMSNorm (Caffe2's RMSNorm / RMSNormGradient): `y = x · rrms · gamma + beta` with
 * `rrms = 1 / sqrt(mean(x², over the normalized axes) + eps)`, normalizing over the axes of `x`
 * from `axis` on. `rrms` has shape `x.shape[:axis]`; `gamma` (and `beta`, when there is a bias)
 * hold one value per element of the normalized axes.
 *
 * eps defaults to 1e-6. Caffe2's operator code reads eps = 0 by default; 0 is allowed here too
 * (an all-zero row then gives rrms = Infinity and a NaN output row).
 *
 * Backward: `dx` is always written (`=`); `dgamma`/`dbeta` are written, or added into when
 * `accumulate` is true. Accumulation is explicit: the caller passes the gradient tensors to add
 * into (the op object keeps no hidden gradient state, so the same object can serve several
 * micro-batches, or several optimizers, without surprises).
 *
 * Devices: the kernels run on the CPU. Tensors on a CUDA device are copied to the host, normalized
 * there and the results copied back to the device of `x` (until the CUDA kernels land); parameter
 * gradients are on the CPU, like the parameters of `RMSNorm`.
 */
import { Device } from './device';
import { RnnkitError } from './errors';
import { native, upload, uploadSync } from './native';
import { Tensor, checkTensor, deviceTensor } from './tensor';
import { checkInputsFinite } from './check';
import {
  argError, readBoolean, readInteger, readNumber, readOptions, readRequiredOptions, readTensorOrNull, sizeProduct,
} from './args';

export interface RmsNormOptions {
  /** First normalized axis (negative counts from the end). Default -1: the last axis only. */
  axis?: number;
  /** Added to the mean of squares; >= 0, default 1e-6. */
  eps?: number;
  /** Write y into this tensor (shape of x) instead of a new one. */
  y?: Tensor;
  /** Write rrms into this tensor (shape x.shape[:axis]) instead of a new one. */
  rrms?: Tensor;
}

export interface RmsNormResult {
  y: Tensor;
  rrms: Tensor;
}

export interface RmsNormBackwardOptions {
  axis?: number;
  /** Compute dbeta (default true). */
  bias?: boolean;
  /** Write dx into this tensor (shape of x). */
  dx?: Tensor;
  /** Write (or with `accumulate`, add) the gamma gradient into this CPU tensor. */
  dgamma?: Tensor;
  /** Write (or with `accumulate`, add) the beta gradient into this CPU tensor. */
  dbeta?: Tensor;
  /** Add into `dgamma`/`dbeta` (both required when accumulating) instead of overwriting. */
  accumulate?: boolean;
}

export interface RmsNormGradients {
  dx: Tensor;
  dgamma: Tensor;
  /** null without a bias. */
  dbeta: Tensor | null;
}

const DEFAULT_EPS = 1e-6;

const FORWARD_KEYS = ['axis', 'eps', 'y', 'rrms'] as const;
const BACKWARD_KEYS = ['axis', 'bias', 'dx', 'dgamma', 'dbeta', 'accumulate'] as const;
const CONFIG_KEYS = ['size', 'axis', 'eps', 'gamma', 'beta', 'bias'] as const;
const OP_FORWARD_KEYS = ['y', 'rrms'] as const;
const OP_BACKWARD_KEYS = ['x', 'rrms', 'dy', 'dx', 'dgamma', 'dbeta', 'accumulate'] as const;

const readEps = (eps: unknown): number => readNumber(eps, 'eps', { min: 0 }, DEFAULT_EPS);
const readAxis = (axis: unknown, fallback?: number): number => readInteger(axis, 'axis', -(2 ** 31), 2 ** 31, fallback);
const readOutput = (v: unknown, what: string): Tensor | undefined => readTensorOrNull(v, what) ?? undefined;

/** The first normalized axis of a rank-`rank` tensor, from a possibly negative `axis`. */
function normalizeAxis(axis: number, rank: number): number {
  if (rank === 0 || axis < -rank || axis >= rank) {
    throw argError(`axis ${axis} is out of range for a rank-${rank} tensor`);
  }
  return axis < 0 ? axis + rank : axis;
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function shapeString(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

interface Layout {
  axis: number;
  rows: number;
  cols: number;
  rowShape: number[];
}

function layout(x: Tensor, axisOption: number, cols: number): Layout {
  const axis = normalizeAxis(axisOption, x.rank);
  const rowShape = x.shape.slice(0, axis);
  const have = product(x.shape.slice(axis));
  if (have !== cols) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE',
      `x ${shapeString(x.shape)} has ${have} elements in its normalized axes (from axis ${axis}); gamma has ${cols}`);
  }
  if (cols === 0) throw new RnnkitError('ERR_RNNKIT_SHAPE', 'the normalized axes are empty');
  return { axis, rows: product(rowShape), cols, rowShape };
}

/** The values of a tensor on the host: the CPU tensor's own array, or a copy of a device tensor. */
async function hostOf(t: Tensor): Promise<Float32Array> {
  return t.device === 'cpu' ? t.data : t.read();
}

function hostOfSync(t: Tensor): Float32Array {
  return t.device === 'cpu' ? t.data : t.readSync();
}

/** A CPU tensor to write a result into: `given` when it is a CPU tensor, else a fresh one. */
function outputTensor(given: Tensor | undefined, what: string, shape: readonly number[], device: Device): Tensor {
  if (given === undefined) return Tensor.fromCpu(new Float32Array(product(shape)), shape);
  checkTensor(given, what);
  if (!sameShape(given.shape, shape)) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must have shape ${shapeString(shape)}, got ${shapeString(given.shape)}`);
  }
  if (given.device !== device) {
    throw new RnnkitError('ERR_RNNKIT_DEVICE', `${what} is on ${given.device}; it must be on ${device}`);
  }
  return given.device === 'cpu' ? given : Tensor.fromCpu(new Float32Array(given.size), shape);
}

/** Moves a host result to `device` (into `given` when the caller supplied the tensor). */
async function deliver(host: Tensor, given: Tensor | undefined, device: Device): Promise<Tensor> {
  if (device === 'cpu') return host;
  const target = given ?? deviceTensor(device, host.shape);
  await upload(target.deviceBuffer, host.data);
  return target;
}

function deliverSync(host: Tensor, given: Tensor | undefined, device: Device): Tensor {
  if (device === 'cpu') return host;
  const target = given ?? deviceTensor(device, host.shape);
  uploadSync(target.deviceBuffer, host.data);
  return target;
}

interface ForwardPlan {
  /** The caller's output tensors, when given. */
  given: { y: Tensor | undefined; rrms: Tensor | undefined };
  rows: number;
  cols: number;
  eps: number;
  y: Tensor;
  rrms: Tensor;
  device: Device;
}

function planForward(x: Tensor, gamma: Tensor, beta: Tensor | null, options: RmsNormOptions | undefined): ForwardPlan {
  const o = readOptions(options, FORWARD_KEYS, 'rmsNorm options');
  checkTensor(x, 'x');
  checkTensor(gamma, 'gamma');
  if (beta !== null) {
    checkTensor(beta, 'beta');
    if (beta.size !== gamma.size) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `beta has ${beta.size} elements, gamma ${gamma.size}`);
    }
  }
  const eps = readEps(o.eps);
  const { rows, cols, rowShape } = layout(x, readAxis(o.axis, -1), gamma.size);
  checkInputsFinite({ x, gamma, beta });
  const device = x.device;
  const given = { y: readOutput(o.y, 'y'), rrms: readOutput(o.rrms, 'rrms') };
  return {
    given, rows, cols, eps, device,
    y: outputTensor(given.y, 'y', x.shape, device),
    rrms: outputTensor(given.rrms, 'rrms', rowShape, device),
  };
}

/** RMSNorm of `x` over the axes from `options.axis` on, computed off the event loop. */
export async function rmsNorm(x: Tensor, gamma: Tensor, beta: Tensor | null, options?: RmsNormOptions): Promise<RmsNormResult> {
  const p = planForward(x, gamma, beta, options);
  const [hx, hg, hb] = await Promise.all([hostOf(x), hostOf(gamma), beta ? hostOf(beta) : null]);
  await native().rmsnormForward(hx, hg, hb, p.y.data, p.rrms.data, p.rows, p.cols, p.eps, true);
  return {
    y: await deliver(p.y, p.given.y, p.device),
    rrms: await deliver(p.rrms, p.given.rrms, p.device),
  };
}

/** RMSNorm of `x` on the calling thread. */
export function rmsNormSync(x: Tensor, gamma: Tensor, beta: Tensor | null, options?: RmsNormOptions): RmsNormResult {
  const p = planForward(x, gamma, beta, options);
  native().rmsnormForward(hostOfSync(x), hostOfSync(gamma), beta ? hostOfSync(beta) : null,
    p.y.data, p.rrms.data, p.rows, p.cols, p.eps, false);
  return { y: deliverSync(p.y, p.given.y, p.device), rrms: deliverSync(p.rrms, p.given.rrms, p.device) };
}

interface BackwardPlan {
  givenDx: Tensor | undefined;
  rows: number;
  cols: number;
  dx: Tensor;
  dgamma: Tensor;
  dbeta: Tensor | null;
  accumulate: boolean;
  device: Device;
}

function gradientTensor(given: Tensor | undefined, what: string, shape: readonly number[], accumulate: boolean): Tensor {
  if (given === undefined) {
    if (accumulate) throw new RnnkitError('ERR_RNNKIT_ARG', `accumulate needs the ${what} tensor to add into`);
    return Tensor.fromCpu(new Float32Array(product(shape)), shape);
  }
  checkTensor(given, what);
  if (given.size !== product(shape)) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must hold ${product(shape)} elements, got ${shapeString(given.shape)}`);
  }
  if (given.device !== 'cpu') throw new RnnkitError('ERR_RNNKIT_DEVICE', `${what} must be a CPU tensor, got one on ${given.device}`);
  return given;
}

function planBackward(x: Tensor, rrms: Tensor, dy: Tensor, gamma: Tensor, options: RmsNormBackwardOptions | undefined): BackwardPlan {
  const o = readOptions(options, BACKWARD_KEYS, 'rmsNormBackward options');
  checkTensor(x, 'x');
  checkTensor(rrms, 'rrms');
  checkTensor(dy, 'dy');
  checkTensor(gamma, 'gamma');
  const { rows, cols, rowShape } = layout(x, readAxis(o.axis, -1), gamma.size);
  if (!sameShape(dy.shape, x.shape)) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `dy must have the shape of x ${shapeString(x.shape)}, got ${shapeString(dy.shape)}`);
  }
  checkInputsFinite({ x, dy, gamma });
  if (!sameShape(rrms.shape, rowShape)) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `rrms must have shape ${shapeString(rowShape)}, got ${shapeString(rrms.shape)}`);
  }
  const accumulate = readBoolean(o.accumulate, 'accumulate', false);
  const bias = readBoolean(o.bias, 'bias', true);
  const dbeta = readOutput(o.dbeta, 'dbeta');
  if (!bias && dbeta !== undefined) throw argError('dbeta given but bias is false');
  const givenDx = readOutput(o.dx, 'dx');
  return {
    givenDx, rows, cols, accumulate, device: x.device,
    dx: outputTensor(givenDx, 'dx', x.shape, x.device),
    dgamma: gradientTensor(readOutput(o.dgamma, 'dgamma'), 'dgamma', gamma.shape, accumulate),
    dbeta: bias ? gradientTensor(dbeta, 'dbeta', gamma.shape, accumulate) : null,
  };
}

/** Gradients of rmsNorm from its input `x`, its `rrms` output and `dy`, off the event loop. */
export async function rmsNormBackward(x: Tensor, rrms: Tensor, dy: Tensor, gamma: Tensor,
  options?: RmsNormBackwardOptions): Promise<RmsNormGradients> {
  const p = planBackward(x, rrms, dy, gamma, options);
  const [hdy, hx, hg, hr] = await Promise.all([hostOf(dy), hostOf(x), hostOf(gamma), hostOf(rrms)]);
  await native().rmsnormBackward(hdy, hx, hg, hr, p.dx.data, p.dgamma.data, p.dbeta ? p.dbeta.data : null,
    p.rows, p.cols, p.accumulate, true);
  return { dx: await deliver(p.dx, p.givenDx, p.device), dgamma: p.dgamma, dbeta: p.dbeta };
}

/** Gradients of rmsNorm on the calling thread. */
export function rmsNormBackwardSync(x: Tensor, rrms: Tensor, dy: Tensor, gamma: Tensor,
  options?: RmsNormBackwardOptions): RmsNormGradients {
  const p = planBackward(x, rrms, dy, gamma, options);
  native().rmsnormBackward(hostOfSync(dy), hostOfSync(x), hostOfSync(gamma), hostOfSync(rrms),
    p.dx.data, p.dgamma.data, p.dbeta ? p.dbeta.data : null, p.rows, p.cols, p.accumulate, false);
  return { dx: deliverSync(p.dx, p.givenDx, p.device), dgamma: p.dgamma, dbeta: p.dbeta };
}

export interface RMSNormConfig {
  /** Size of the normalized axes: a count, or their shape (then gamma/beta have that shape). */
  size: number | readonly number[];
  /** First normalized axis of the input. Default: -1 for a count, -size.length for a shape. */
  axis?: number;
  /** >= 0, default 1e-6 (Caffe2's code reads 0). */
  eps?: number;
  /** Initial gamma (copied); default ones. */
  gamma?: Float32Array | Tensor;
  /** Initial beta (copied); default zeros. Not allowed with bias: false. */
  beta?: Float32Array | Tensor;
  /** Whether there is a beta. Default true. */
  bias?: boolean;
}

export interface RMSNormForwardOptions {
  y?: Tensor;
  rrms?: Tensor;
}

export interface RMSNormBackwardArgs {
  x: Tensor;
  rrms: Tensor;
  dy: Tensor;
  dx?: Tensor;
  /** Gradient tensors to write, or with `accumulate` to add into (shape of gamma, CPU). */
  dgamma?: Tensor;
  dbeta?: Tensor;
  accumulate?: boolean;
}

function initialParam(value: unknown, what: string, shape: readonly number[], fill: number): Tensor {
  const size = product(shape);
  if (value === undefined) return Tensor.fromCpu(new Float32Array(size).fill(fill), shape);
  let data: Float32Array;
  if (value instanceof Tensor) {
    value.assertLive(what);
    data = value.readSync();
  } else if (value instanceof Float32Array) {
    data = value.slice();
  } else {
    throw new RnnkitError(ArrayBuffer.isView(value) ? 'ERR_RNNKIT_DTYPE' : 'ERR_RNNKIT_ARG',
      `${what} must be a Float32Array or a Tensor`);
  }
  if (data.length !== size) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must hold ${size} values, got ${data.length}`);
  }
  return Tensor.fromCpu(data, shape);
}

/** The RMSNorm operator object: owns gamma (and beta) as CPU tensors. */
export class RMSNorm {
  readonly size: number;
  readonly shape: readonly number[];
  readonly axis: number;
  readonly eps: number;
  readonly bias: boolean;
  private readonly gammaTensor: Tensor;
  private readonly betaTensor: Tensor | null;
  private disposedFlag = false;

  constructor(config: RMSNormConfig) {
    const o = readRequiredOptions(config, CONFIG_KEYS, 'RMSNorm options', 'RMSNorm needs options { size }');
    const size = o.size;
    const shape = typeof size === 'number' ? [size] : Array.isArray(size) ? (size as unknown[]).slice() : null;
    if (shape === null || shape.length === 0 || !shape.every((d) => Number.isInteger(d) && (d as number) >= 1)) {
      throw argError(`size must be a positive integer or a shape of them, got ${String(size)}`);
    }
    const dims = shape as number[];
    const axis = readAxis(o.axis, -dims.length);
    const bias = readBoolean(o.bias, 'bias', true);
    if (!bias && o.beta !== undefined) throw argError('beta given but bias is false');
    this.shape = Object.freeze(dims);
    this.size = sizeProduct(dims, 'size');
    this.axis = axis;
    this.eps = readEps(o.eps);
    this.bias = bias;
    this.gammaTensor = initialParam(o.gamma, 'gamma', dims, 1);
    this.betaTensor = bias ? initialParam(o.beta, 'beta', dims, 0) : null;
  }

  get gamma(): Tensor {
    this.assertLive();
    return this.gammaTensor;
  }

  /** null without a bias. */
  get beta(): Tensor | null {
    this.assertLive();
    return this.betaTensor;
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** `{ y, rrms }` for `x`, off the event loop. */
  async forward(x: Tensor, options?: RMSNormForwardOptions): Promise<RmsNormResult> {
    this.checkInput(x);
    return rmsNorm(x, this.gamma, this.beta, this.forwardOptions(options));
  }

  forwardSync(x: Tensor, options?: RMSNormForwardOptions): RmsNormResult {
    this.checkInput(x);
    return rmsNormSync(x, this.gamma, this.beta, this.forwardOptions(options));
  }

  /** `{ dx, dgamma, dbeta }` (dbeta null without a bias), off the event loop. */
  async backward(args: RMSNormBackwardArgs): Promise<RmsNormGradients> {
    const a = this.backwardArgs(args);
    return rmsNormBackward(a.x, a.rrms, a.dy, this.gamma, this.backwardOptions(a));
  }

  backwardSync(args: RMSNormBackwardArgs): RmsNormGradients {
    const a = this.backwardArgs(args);
    return rmsNormBackwardSync(a.x, a.rrms, a.dy, this.gamma, this.backwardOptions(a));
  }

  /** Releases gamma and beta; the object is unusable afterwards. Idempotent. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.gammaTensor.dispose();
    if (this.betaTensor) this.betaTensor.dispose();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private assertLive(): void {
    if (this.disposedFlag) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'this RMSNorm has been disposed');
  }

  private checkInput(x: Tensor): void {
    this.assertLive();
    checkTensor(x, 'x');
    const axis = normalizeAxis(this.axis, x.rank);
    if (this.shape.length > 1 && !sameShape(x.shape.slice(axis), this.shape)) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE',
        `x ${shapeString(x.shape)} must end in the normalized shape ${shapeString(this.shape)} from axis ${axis}`);
    }
  }

  private forwardOptions(options: RMSNormForwardOptions | undefined): RmsNormOptions {
    const o = readOptions(options, OP_FORWARD_KEYS, 'RMSNorm forward options');
    return { axis: this.axis, eps: this.eps, y: readOutput(o.y, 'y'), rrms: readOutput(o.rrms, 'rrms') };
  }

  private backwardArgs(args: RMSNormBackwardArgs): RMSNormBackwardArgs {
    const o = readRequiredOptions(args, OP_BACKWARD_KEYS, 'RMSNorm backward arguments', 'backward needs { x, rrms, dy }');
    const a = { ...o } as RMSNormBackwardArgs;
    this.checkInput(a.x);
    return a;
  }

  private backwardOptions(a: RMSNormBackwardArgs): RmsNormBackwardOptions {
    const o: RmsNormBackwardOptions = { axis: this.axis, bias: this.bias };
    if (a.dx !== undefined) o.dx = a.dx;
    if (a.dgamma !== undefined) o.dgamma = a.dgamma;
    if (a.dbeta !== undefined) o.dbeta = a.dbeta;
    if (a.accumulate !== undefined) o.accumulate = a.accumulate;
    return o;
  }
}
