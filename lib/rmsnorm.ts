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
 * Devices: when x, gamma (and beta) are on one CUDA device — and for the backward rrms and dy too —
 * the CUDA kernels (cuda/rmsnorm.cu) run there and every output, the parameter gradients included,
 * is on that device: no host copy. Any other mix runs the CPU kernels on host copies; outputs go
 * to the device of x (dx, y, rrms) and of gamma (dgamma, dbeta), and the run record says so
 * (`lastRun` of an RMSNorm, `backendInfo().lastRuns`). An `RMSNorm` created with `device` keeps
 * gamma and beta there.
 *
 * Examples: [RMSNorm](../README.md#rmsnorm).
 * @module
 */
import { Device, DeviceSpec, deviceIndex, numThreads, resolveDevice } from './device';
import { RnnkitError } from './errors';
import { MaybePromise, then } from './nn/maybe';
import { DeviceBuffer, native, upload, uploadSync } from './native';
import { OpRunInfo, lastRunOf, recordRun } from './run-info';
import { Tensor, checkTensor, emptyTensor, isTensor } from './tensor';
import { checkInputsFinite } from './check';
import {
  Allocation, allocFloats, argError, copyOf, checkDeviceAllocation, checkHostAllocation, describe, isInstance, readArray, readBoolean,
  readInteger, readNumber, readOptions, readRequiredOptions, readTensorOrNull, sizeProduct,
} from './args';

/** Options of the functional `rmsNorm` / `rmsNormSync`. */
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

/** The forward's outputs. */
export interface RmsNormResult {
  /** x · rrms · gamma + beta, the shape of x. */
  y: Tensor;
  /** 1 / sqrt(mean(x²) + eps) per normalized row, shape x.shape[:axis]; the backward needs it. */
  rrms: Tensor;
}

/** Options of the functional `rmsNormBackward` / `rmsNormBackwardSync`. */
export interface RmsNormBackwardOptions {
  /** First normalized axis, as given to the forward. Default -1. */
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

/** The backward's gradients. */
export interface RmsNormGradients {
  /** dL/dx, the shape of x. */
  dx: Tensor;
  /** dL/dgamma, the shape of gamma. */
  dgamma: Tensor;
  /** null without a bias. */
  dbeta: Tensor | null;
}

const DEFAULT_EPS = 1e-6;

const FORWARD_KEYS = ['axis', 'eps', 'y', 'rrms'] as const;
const BACKWARD_KEYS = ['axis', 'bias', 'dx', 'dgamma', 'dbeta', 'accumulate'] as const;
const CONFIG_KEYS = ['size', 'axis', 'eps', 'gamma', 'beta', 'bias', 'device'] as const;
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

/** Where a call runs: the CUDA kernels when every tensor is on the first one's CUDA device. */
interface Placement {
  cuda: boolean;
  device: Device;
  fallback: string | null;
}

function placement(tensors: Array<Tensor | null>): Placement {
  const ts = tensors.filter((t): t is Tensor => t !== null);
  const device = ts[0].device;
  if (device !== 'cpu' && ts.every((t) => t.device === device)) return { cuda: true, device, fallback: null };
  const elsewhere = [...new Set(ts.map((t) => t.device).filter((d) => d !== 'cpu'))];
  const fallback = elsewhere.length ? `tensors on ${['cpu', ...elsewhere].join(' and ')}: ran on the CPU with host copies` : null;
  return { cuda: false, device: 'cpu', fallback };
}

/**
 * Refuses a call whose new arrays would not fit, before any is made: `outputs` are the results
 * (on `device`, the device of x), `inputs` the tensors a host run copies when they are on a CUDA
 * device, `workingFloats` the CPU kernel's scratch.
 */
function checkSizes(call: string, where: Placement, device: Device, outputs: Allocation[], inputs: Tensor[],
  workingFloats: number): void {
  if (device !== 'cpu') checkDeviceAllocation(call, deviceIndex(device), outputs);
  if (where.cuda) return;
  const host: Allocation[] = [...outputs, { what: 'the working memory of the kernel', floats: workingFloats, native: true }];
  for (const t of inputs) if (t.device !== 'cpu') host.push({ what: `a host copy of [${t.shape.join(', ')}]`, floats: t.size });
  checkHostAllocation(call, host);
}

/** The backward kernel's per-thread row sums and column accumulators (native/kernels/rmsnorm.cc), bounded from above. */
function backwardWorkingFloats(rows: number, cols: number): number {
  return 4 * numThreads() * (rows + cols + 64);
}

/** The values of tensors on the host: a CPU tensor's own array, or a copy of a device tensor. */
function hostValuesOf(ts: Tensor[], async: boolean): MaybePromise<Float32Array[]> {
  if (async) return Promise.all(ts.map((t) => (t.device === 'cpu' ? t.data : t.read())));
  return ts.map((t) => (t.device === 'cpu' ? t.data : t.readSync()));
}

/**
 * An output: `work` is where the kernel writes (on its device), `given` the caller's tensor, and
 * `device` where the result belongs. A host run with a device result writes a host tensor and
 * delivers it; `initial` then says whether the kernel must see the given values (accumulation).
 */
interface Output {
  work: Tensor;
  given: Tensor | undefined;
  device: Device;
}

function output(given: Tensor | undefined, what: string, shape: readonly number[], device: Device, onCuda: boolean,
  gradient = false, initial = false): Output {
  if (given !== undefined) {
    checkTensor(given, what);
    if (gradient ? given.size !== product(shape) : !sameShape(given.shape, shape)) {
      const want = gradient ? `hold ${product(shape)} elements` : `have shape ${shapeString(shape)}`;
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must ${want}, got ${shapeString(given.shape)}`);
    }
    if (given.device !== device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `${what} is on ${given.device}; it must be on ${device}`);
  }
  if (onCuda || device === 'cpu') return { work: given ?? emptyTensor(shape, device), given, device };
  const host = initial && given ? given.readSync() : allocFloats(product(shape), what);
  return { work: Tensor.fromCpu(host, given ? given.shape : shape), given, device };
}

/** The output on its device: the work tensor, or a copy of it (into the given tensor when there is one). */
function deliver(o: Output, async: boolean): MaybePromise<Tensor> {
  if (o.work.device === o.device) return o.work;
  const target = o.given ?? emptyTensor(o.work.shape, o.device);
  if (!async) {
    uploadSync(target.deviceBuffer, o.work.data);
    return target;
  }
  return upload(target.deviceBuffer, o.work.data).then(() => target);
}

function buf(t: Tensor | null): DeviceBuffer | null {
  return t === null ? null : t.deviceBuffer;
}

interface ForwardPlan {
  rows: number;
  cols: number;
  eps: number;
  x: Tensor;
  gamma: Tensor;
  beta: Tensor | null;
  cuda: boolean;
  y: Output;
  rrms: Output;
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
  const where = placement([x, gamma, beta]);
  const cuda = where.cuda;
  checkSizes('rmsNorm', where, x.device, [{ what: 'y', floats: x.size }, { what: 'rrms', floats: rows }],
    beta ? [x, gamma, beta] : [x, gamma], 0);
  const plan = {
    rows, cols, eps, x, gamma, beta, cuda,
    y: output(readOutput(o.y, 'y'), 'y', x.shape, x.device, cuda),
    rrms: output(readOutput(o.rrms, 'rrms'), 'rrms', rowShape, x.device, cuda),
  };
  recordRun('rmsNorm', where.device, where.fallback);
  return plan;
}

function runForward(p: ForwardPlan, async: boolean): MaybePromise<RmsNormResult> {
  if (p.cuda) {
    return then(native().cudaRmsnormForward(p.x.deviceBuffer, p.gamma.deviceBuffer, buf(p.beta), p.y.work.deviceBuffer,
      p.rrms.work.deviceBuffer, p.rows, p.cols, p.eps, async), () => ({ y: p.y.work, rrms: p.rrms.work }));
  }
  const inputs = [p.x, p.gamma, ...(p.beta ? [p.beta] : [])];
  return then(hostValuesOf(inputs, async), ([hx, hg, hb]) =>
    then(native().rmsnormForward(hx, hg, hb ?? null, p.y.work.data, p.rrms.work.data, p.rows, p.cols, p.eps, async), () =>
      then(deliver(p.y, async), (y) => then(deliver(p.rrms, async), (rrms) => ({ y, rrms })))));
}

/** RMSNorm of `x` over the axes from `options.axis` on, computed off the event loop. */
export async function rmsNorm(x: Tensor, gamma: Tensor, beta: Tensor | null, options?: RmsNormOptions): Promise<RmsNormResult> {
  return runForward(planForward(x, gamma, beta, options), true);
}

/** RMSNorm of `x` on the calling thread. */
export function rmsNormSync(x: Tensor, gamma: Tensor, beta: Tensor | null, options?: RmsNormOptions): RmsNormResult {
  return runForward(planForward(x, gamma, beta, options), false) as RmsNormResult;
}

interface BackwardPlan {
  rows: number;
  cols: number;
  x: Tensor;
  rrms: Tensor;
  dy: Tensor;
  gamma: Tensor;
  cuda: boolean;
  dx: Output;
  dgamma: Output;
  dbeta: Output | null;
  accumulate: boolean;
}

function gradientOutput(given: Tensor | undefined, what: string, gamma: Tensor, accumulate: boolean, cuda: boolean): Output {
  if (given === undefined && accumulate) throw argError(`accumulate needs the ${what} tensor to add into`);
  return output(given, what, gamma.shape, gamma.device, cuda, true, accumulate);
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
  const where = placement([x, rrms, dy, gamma]);
  const cuda = where.cuda;
  checkSizes('rmsNormBackward', where, x.device, [{ what: 'dx', floats: x.size }, { what: 'dgamma and dbeta', floats: 2 * cols }],
    [x, rrms, dy, gamma], backwardWorkingFloats(rows, cols));
  const plan = {
    rows, cols, x, rrms, dy, gamma, cuda, accumulate,
    dx: output(readOutput(o.dx, 'dx'), 'dx', x.shape, x.device, cuda),
    dgamma: gradientOutput(readOutput(o.dgamma, 'dgamma'), 'dgamma', gamma, accumulate, cuda),
    dbeta: bias ? gradientOutput(dbeta, 'dbeta', gamma, accumulate, cuda) : null,
  };
  recordRun('rmsNormBackward', where.device, where.fallback);
  return plan;
}

function runBackward(p: BackwardPlan, async: boolean): MaybePromise<RmsNormGradients> {
  if (p.cuda) {
    return then(native().cudaRmsnormBackward(p.dy.deviceBuffer, p.x.deviceBuffer, p.gamma.deviceBuffer,
      p.rrms.deviceBuffer, p.dx.work.deviceBuffer, p.dgamma.work.deviceBuffer, p.dbeta ? p.dbeta.work.deviceBuffer : null,
      p.rows, p.cols, p.accumulate, async), () => ({ dx: p.dx.work, dgamma: p.dgamma.work, dbeta: p.dbeta ? p.dbeta.work : null }));
  }
  const dbeta = p.dbeta;
  return then(hostValuesOf([p.dy, p.x, p.gamma, p.rrms], async), ([hdy, hx, hg, hr]) =>
    then(native().rmsnormBackward(hdy, hx, hg, hr, p.dx.work.data, p.dgamma.work.data, dbeta ? dbeta.work.data : null,
      p.rows, p.cols, p.accumulate, async), () =>
      then(deliver(p.dx, async), (dx) => then(deliver(p.dgamma, async), (dgamma) =>
        then(dbeta ? deliver(dbeta, async) : null, (db) => ({ dx, dgamma, dbeta: db }))))));
}

/** Gradients of rmsNorm from its input `x`, its `rrms` output and `dy`, off the event loop. */
export async function rmsNormBackward(x: Tensor, rrms: Tensor, dy: Tensor, gamma: Tensor,
  options?: RmsNormBackwardOptions): Promise<RmsNormGradients> {
  return runBackward(planBackward(x, rrms, dy, gamma, options), true);
}

/** Gradients of rmsNorm on the calling thread. */
export function rmsNormBackwardSync(x: Tensor, rrms: Tensor, dy: Tensor, gamma: Tensor,
  options?: RmsNormBackwardOptions): RmsNormGradients {
  return runBackward(planBackward(x, rrms, dy, gamma, options), false) as RmsNormGradients;
}

/** Options of `new RMSNorm(...)`. */
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
  /** Where gamma and beta live (default 'cpu'); inputs on that CUDA device run the CUDA kernels. */
  device?: DeviceSpec;
}

/** Options of `RMSNorm.forward`: outputs to write into instead of new tensors. */
export interface RMSNormForwardOptions {
  /** Write y into this tensor (shape of x). */
  y?: Tensor;
  /** Write rrms into this tensor (shape x.shape[:axis]). */
  rrms?: Tensor;
}

/** Arguments of `RMSNorm.backward`: the forward's input and rrms, the output gradient, outputs. */
export interface RMSNormBackwardArgs {
  /** The forward's input. */
  x: Tensor;
  /** The forward's rrms. */
  rrms: Tensor;
  /** dL/dy, the shape of x. */
  dy: Tensor;
  /** Write dx into this tensor (shape of x). */
  dx?: Tensor;
  /** Gradient tensors to write, or with `accumulate` to add into (shape of gamma, on gamma's device). */
  dgamma?: Tensor;
  /** As `dgamma`, for beta. */
  dbeta?: Tensor;
  /** Add into `dgamma`/`dbeta` instead of overwriting them. */
  accumulate?: boolean;
}

function initialParam(value: unknown, what: string, shape: readonly number[], fill: number): Tensor {
  const size = product(shape);
  if (value === undefined) return Tensor.fromCpu(allocFloats(size, what, 'new RMSNorm').fill(fill), shape);
  let data: Float32Array;
  if (isTensor(value)) {
    value.assertLive(what);
    data = value.readSync();
  } else if (isInstance(value, Float32Array)) {
    data = copyOf(value, what);
  } else {
    throw new RnnkitError(ArrayBuffer.isView(value) ? 'ERR_RNNKIT_DTYPE' : 'ERR_RNNKIT_ARG',
      `${what} must be a Float32Array or a Tensor`);
  }
  if (data.length !== size) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must hold ${size} values, got ${data.length}`);
  }
  return Tensor.fromCpu(data, shape);
}

/** The RMSNorm operator object: owns gamma (and beta) on its device. */
export class RMSNorm {
  /** Values per normalized row (the product of `shape`). */
  readonly size: number;
  /** The shape of the normalized axes, and of gamma and beta. */
  readonly shape: readonly number[];
  /** The first normalized axis of the input (negative: from the end). */
  readonly axis: number;
  /** Added to the mean of squares. */
  readonly eps: number;
  /** Whether there is a beta. */
  readonly bias: boolean;
  /** Where gamma and beta live. */
  readonly device: Device;
  /** Where the last forward or backward ran, and why not on the inputs' device (null before the first). */
  lastRun: OpRunInfo | null = null;
  private readonly gammaTensor: Tensor;
  private readonly betaTensor: Tensor | null;
  private disposedFlag = false;

  /**
   * Checks the configuration and creates gamma (and beta) on `device`, from the given values or
   * the defaults (ones and zeros). Throws ERR_RNNKIT_ARG naming a bad option, ERR_RNNKIT_SHAPE for
   * initial values of the wrong size.
   */
  constructor(config: RMSNormConfig) {
    const o = readRequiredOptions(config, CONFIG_KEYS, 'RMSNorm options', 'RMSNorm needs options { size }');
    const size = o.size;
    const shape = typeof size === 'number' ? [size] : typeof size === 'object' && size !== null ? readArray(size, 'size', 64) : null;
    if (shape === null || shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 1)) {
      throw argError(`size must be a positive integer or a shape of them (got ${shape === null ? describe(size) : `[${shape.map(describe).join(', ')}]`})`);
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
    this.device = resolveDevice(o.device === undefined ? 'cpu' : (o.device as DeviceSpec));
    const params: Allocation[] = [{ what: `gamma [${dims.join(', ')}]`, floats: this.size }, { what: 'beta', floats: bias ? this.size : 0 }];
    checkHostAllocation('new RMSNorm', params);
    if (this.device !== 'cpu') checkDeviceAllocation('new RMSNorm', deviceIndex(this.device), params);
    this.gammaTensor = initialParam(o.gamma, 'gamma', dims, 1).to(this.device);
    this.betaTensor = bias ? initialParam(o.beta, 'beta', dims, 0).to(this.device) : null;
  }

  /** The scale parameter, shape `shape`, on `device`. */
  get gamma(): Tensor {
    this.assertLive();
    return this.gammaTensor;
  }

  /** null without a bias. */
  get beta(): Tensor | null {
    this.assertLive();
    return this.betaTensor;
  }

  /** True once `dispose()` was called. */
  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** `{ y, rrms }` for `x`, off the event loop. */
  async forward(x: Tensor, options?: RMSNormForwardOptions): Promise<RmsNormResult> {
    this.checkInput(x);
    const run = rmsNorm(x, this.gamma, this.beta, this.forwardOptions(options));
    this.lastRun = lastRunOf('rmsNorm');  // recorded by the call's synchronous part
    return run;
  }

  /** `forward` on the calling thread. */
  forwardSync(x: Tensor, options?: RMSNormForwardOptions): RmsNormResult {
    this.checkInput(x);
    const result = rmsNormSync(x, this.gamma, this.beta, this.forwardOptions(options));
    this.lastRun = lastRunOf('rmsNorm');
    return result;
  }

  /** `{ dx, dgamma, dbeta }` (dbeta null without a bias), off the event loop. */
  async backward(args: RMSNormBackwardArgs): Promise<RmsNormGradients> {
    const a = this.backwardArgs(args);
    const run = rmsNormBackward(a.x, a.rrms, a.dy, this.gamma, this.backwardOptions(a));
    this.lastRun = lastRunOf('rmsNormBackward');
    return run;
  }

  /** `backward` on the calling thread. */
  backwardSync(args: RMSNormBackwardArgs): RmsNormGradients {
    const a = this.backwardArgs(args);
    const result = rmsNormBackwardSync(a.x, a.rrms, a.dy, this.gamma, this.backwardOptions(a));
    this.lastRun = lastRunOf('rmsNormBackward');
    return result;
  }

  /** Releases gamma and beta; the object is unusable afterwards. Idempotent. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.gammaTensor.dispose();
    if (this.betaTensor) this.betaTensor.dispose();
  }

  /** `dispose()`, for `using`. */
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
