/**
 * Recurrent: the fused multi-layer LSTM / GRU / RNN operator (DESIGN §4, docs/recurrent-semantics.md)
 * over the CPU kernels of native/kernels/recurrent.h.
 *
 * Contract:
 * - `weights` is one packed CPU Tensor (layout in the semantics doc), drawn like PyTorch from `seed`.
 * - `forward(x, { hx, cx, seqLengths, training, dropout, dropoutSeed })` -> `{ y, hy, cy, saved }`;
 *   `saved` is non-null only when training and holds what `backward` needs: references to x, hx,
 *   cx, the weights (with their version), y, the saved activations and the dropout seed. x, hx, cx
 *   and y must not be modified before the backward (disposing them is detected; writes through
 *   `data` are not). Each dropout forward draws a fresh mask unless `dropoutSeed` is given.
 * - `backward(saved, { dy, dhy, dcy, accumulate, dweights })` -> `{ dx, dhx, dcx, dweights }`;
 *   dx, dhx, dcx are new; dweights is new, or the given tensor overwritten, or added into with
 *   `accumulate`. Weight changes through setParam/importWeights between forward and backward are
 *   refused (the gradients would mix two sets of weights).
 * - Every bad input throws RnnkitError with a code before any native call; the binding checks
 *   everything again.
 * - CUDA: an op created for a CUDA device, given x on that device, runs the CUDA kernels
 *   (cuda/recurrent.cu) with the weights held on the device: uploaded on first use and again after
 *   setParam / importWeights or any access to `weights` (whose `data` the caller may write). hx, cx,
 *   dy, dhy, dcy on another device are copied over; outputs and `saved` stay on the device, and
 *   `dweights` remains a CPU tensor like the weights. `lastRun.algorithm` names the GPU algorithm
 *   (standard | persistent, chosen by shape). Any other combination (a CPU op, CPU inputs, inputs on
 *   another device, a saved made on the CPU) runs on the CPU, outputs go back to x's device, and
 *   `lastRun.fallback` says why.
 */
import { randomInt } from 'crypto';
import { RnnkitError } from './errors';
import { Device, DeviceSpec, deviceIndex, resolveDevice } from './device';
import { native, DeviceBuffer } from './native';
import { Tensor, checkTensor } from './tensor';
import { checkInputsFinite } from './check';
import {
  ParamSelector, RecurrentLayoutConfig, RecurrentMode, WeightsFormat, WeightsRecord,
  exportWeights, importWeights, initWeights, paramSlot, weightsSize,
} from './recurrent-params';

export interface RecurrentOptions {
  mode: RecurrentMode;
  inputSize: number;
  hiddenSize: number;
  numLayers?: number;
  bidirectional?: boolean;
  /** Dropout probability on the outputs of every layer but the last, in [0, 1). */
  dropout?: number;
  inputMode?: 'linear' | 'skip';
  batchFirst?: boolean;
  /** LSTM only: size of the projected hidden state (0: none). */
  projSize?: number;
  /** LSTM only: clip the cell state to [-cellClip, cellClip] (0: none). */
  cellClip?: number;
  /** LSTM only. */
  peepholes?: boolean;
  /** GRU only: true is the cuDNN / PyTorch form, false the ONNX default. */
  linearBeforeReset?: boolean;
  device?: DeviceSpec;
  /** Seeds the weights and the dropout masks; a random one when absent. */
  seed?: number;
}

export interface RecurrentForwardOptions {
  /** [L·D, B, R] initial hidden state (zeros when absent). */
  hx?: Tensor | null;
  /** [L·D, B, H] initial cell state, LSTM only (zeros when absent). */
  cx?: Tensor | null;
  /** B lengths in 0..T, any order (all T when absent). */
  seqLengths?: Int32Array | null;
  /** Keep what backward needs (default false). */
  training?: boolean;
  /** Apply dropout between layers (default: `training`). */
  dropout?: boolean;
  /** Seed of the dropout masks of this call (default: the next of the op's own sequence). */
  dropoutSeed?: number;
}

export interface RecurrentForwardResult {
  y: Tensor;
  hy: Tensor;
  /** null unless mode is lstm. */
  cy: Tensor | null;
  /** null unless training. */
  saved: RecurrentSaved | null;
}

export interface RecurrentBackwardOptions {
  dy?: Tensor | null;
  dhy?: Tensor | null;
  dcy?: Tensor | null;
  /** Add the weight gradients into `dweights` instead of overwriting it. */
  accumulate?: boolean;
  /** CPU tensor of the weights' size to write (or add) the weight gradients into. */
  dweights?: Tensor | null;
}

export interface RecurrentGradients {
  dx: Tensor;
  dhx: Tensor;
  /** null unless mode is lstm. */
  dcx: Tensor | null;
  dweights: Tensor;
}

/** What ran: no silent slow paths. */
export interface RecurrentRunInfo {
  op: 'forward' | 'backward';
  /** Where the kernels ran. */
  device: Device;
  /** The device the op was created for. */
  requestedDevice: Device;
  /** CPU instruction-set path (portable | avx2 | avx512 | neon). */
  isa: string;
  algorithm: string;
  /** Why the op did not run on the requested device or the inputs' device; null when it did. */
  fallback: string | null;
  training: boolean;
  /** The dropout probability applied (0 when off). */
  dropout: number;
  dropoutSeed: number;
}

/** The configuration passed to the binding (see native/napi/recurrent_ops.cc). */
interface NativeConfig {
  mode: RecurrentMode;
  inputSize: number;
  hiddenSize: number;
  numLayers: number;
  bidirectional: boolean;
  skipInput: boolean;
  projSize: number;
  cellClip: number;
  peepholes: boolean;
  linearBeforeReset: boolean;
}

type MaybePromise = Promise<void> | undefined;
type F32 = Float32Array | null;

interface RecurrentBinding {
  recurrentWeightsSize(cfg: NativeConfig): number;
  recurrentSavedSize(cfg: NativeConfig, T: number, B: number): number;
  recurrentInfo(): { isa: string; algorithm: string };
  recurrentForward(cfg: NativeConfig, T: number, B: number, batchFirst: boolean, x: Float32Array, hx: F32,
    cx: F32, seqLengths: Int32Array | null, weights: Float32Array, dropout: number, seed: number,
    y: Float32Array, hy: F32, cy: F32, saved: F32, async: boolean): MaybePromise;
  recurrentBackward(cfg: NativeConfig, T: number, B: number, batchFirst: boolean, x: Float32Array, hx: F32,
    cx: F32, seqLengths: Int32Array | null, weights: Float32Array, dropout: number, seed: number,
    y: Float32Array, saved: Float32Array, dy: F32, dhy: F32, dcy: F32, dx: Float32Array, dhx: F32,
    dcx: F32, dweights: Float32Array, accumulate: boolean, async: boolean): MaybePromise;
}

const binding = (): RecurrentBinding => native() as unknown as RecurrentBinding;

type Buf = DeviceBuffer | null;
type MaybeAlgorithm = Promise<string> | string;

/** The CUDA bindings (native/napi/cuda_recurrent_ops.cc); absent from the CPU flavor. */
interface CudaRecurrentBinding {
  cudaRecurrentForward(cfg: NativeConfig, T: number, B: number, batchFirst: boolean, x: DeviceBuffer, hx: Buf, cx: Buf,
    seqLengths: Int32Array | null, weights: DeviceBuffer, dropout: number, seed: number, y: DeviceBuffer, hy: Buf,
    cy: Buf, saved: Buf, algorithm: 'auto' | 'standard' | 'persistent', async: boolean): MaybeAlgorithm;
  cudaRecurrentBackward(cfg: NativeConfig, T: number, B: number, batchFirst: boolean, x: DeviceBuffer, hx: Buf,
    cx: Buf, seqLengths: Int32Array | null, weights: DeviceBuffer, dropout: number, seed: number, y: DeviceBuffer,
    saved: DeviceBuffer, dy: Buf, dhy: Buf, dcy: Buf, dx: DeviceBuffer, dhx: Buf, dcx: Buf, dweights: DeviceBuffer,
    accumulate: boolean, async: boolean): MaybeAlgorithm;
}

const cudaBinding = (): CudaRecurrentBinding | null => {
  const n = native();
  return typeof n.cudaRecurrentForward === 'function' ? n as unknown as CudaRecurrentBinding : null;
};

/** A new, uninitialized CUDA tensor. */
function deviceTensor(device: Device, shape: readonly number[]): Tensor {
  const size = shape.reduce((a, b) => a * b, 1);
  return Tensor.fromDevice(new (native().DeviceBuffer)(deviceIndex(device), size * 4), device, shape);
}

/** What a CUDA training forward keeps: device tensors, and the copies of inputs it made. */
interface CudaSaved {
  y: Tensor;
  hx: Tensor | null;
  cx: Tensor | null;
  seqLengths: Int32Array | null;
  activations: Tensor;
  /** Tensors made for this saved (activations, inputs copied from another device). */
  owned: Tensor[];
}

const OPTION_KEYS = new Set(['mode', 'inputSize', 'hiddenSize', 'numLayers', 'bidirectional', 'dropout',
  'inputMode', 'batchFirst', 'projSize', 'cellClip', 'peepholes', 'linearBeforeReset', 'device', 'seed']);
const FORWARD_KEYS = new Set(['hx', 'cx', 'seqLengths', 'training', 'dropout', 'dropoutSeed']);
const BACKWARD_KEYS = new Set(['dy', 'dhy', 'dcy', 'accumulate', 'dweights']);
const PARAM_KINDS: readonly unknown[] = ['w_ih', 'w_hh', 'b_ih', 'b_hh', 'w_proj', 'w_peephole'];

function argError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_ARG', message);
}

function shapeError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_SHAPE', message);
}

// Unknown keys are refused so that a misspelled option (hidden_size, seq_lengths) is not ignored.
function checkKeys(o: unknown, allowed: Set<string>, what: string): Record<string, unknown> {
  if (o === undefined) return {};
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw argError(`${what} must be an object`);
  const unknown = Object.keys(o).filter((k) => !allowed.has(k));
  if (unknown.length > 0) throw argError(`unknown ${what} ${unknown.join(', ')} (allowed: ${[...allowed].join(', ')})`);
  return o as Record<string, unknown>;
}

function optBool(v: unknown, what: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw argError(`${what} must be a boolean (got ${String(v)})`);
  return v;
}

function checkSeed(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw argError(`${what} must be a non-negative safe integer (got ${String(v)})`);
  }
  return v;
}

const sameShape = (t: Tensor, shape: readonly number[]): boolean =>
  t.rank === shape.length && t.shape.every((d, k) => d === shape[k]);

/** An optional tensor argument of exactly `shape`; null when absent. */
function optTensor(v: unknown, what: string, shape: readonly number[]): Tensor | null {
  if (v === undefined || v === null) return null;
  const t = checkTensor(v, what);
  if (!sameShape(t, shape)) {
    throw shapeError(`${what} must have shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
  return t;
}

const hostSync = (t: Tensor | null): F32 => (t === null ? null : t.device === 'cpu' ? t.data : t.readSync());
const hostAsync = async (t: Tensor | null): Promise<F32> =>
  t === null ? null : t.device === 'cpu' ? t.data : t.read();

/** What a training forward keeps for its backward. Opaque; `release()` frees it early. */
export class RecurrentSaved {
  /** @internal */ readonly owner: Recurrent;
  /** @internal */ readonly T: number;
  /** @internal */ readonly B: number;
  /** @internal */ readonly inputs: ReadonlyArray<Tensor | null>;
  /** @internal */ readonly weightsVersion: number;
  /** @internal */ readonly dropout: number;
  /** @internal */ readonly dropoutSeed: number;
  /** @internal */ readonly xShape: readonly number[];
  /** @internal */ readonly yShape: readonly number[];
  /** @internal */ data: {
    x: Float32Array; hx: F32; cx: F32; seqLengths: Int32Array | null; y: Float32Array; activations: Float32Array;
  } | null;
  /** @internal The CUDA forward's state (then `data` is null). */ cuda: CudaSaved | null;

  /** @internal */
  constructor(init: Omit<RecurrentSaved, 'released' | 'release'>) {
    this.owner = init.owner;
    this.T = init.T;
    this.B = init.B;
    this.inputs = init.inputs;
    this.weightsVersion = init.weightsVersion;
    this.dropout = init.dropout;
    this.dropoutSeed = init.dropoutSeed;
    this.xShape = init.xShape;
    this.yShape = init.yShape;
    this.data = init.data;
    this.cuda = init.cuda;
  }

  get released(): boolean {
    return this.data === null && this.cuda === null;
  }

  /** Drops the saved activations and references now (device memory at once); a later backward with it throws. */
  release(): void {
    this.data = null;
    if (this.cuda) this.cuda.owned.forEach((t) => t.dispose());
    this.cuda = null;
  }
}

interface ForwardPlan {
  T: number;
  B: number;
  x: Tensor;
  hx: Tensor | null;
  cx: Tensor | null;
  seqLengths: Int32Array | null;
  training: boolean;
  dropout: number;
  dropoutSeed: number;
  yShape: number[];
}

interface BackwardPlan {
  saved: RecurrentSaved;
  dy: Tensor | null;
  dhy: Tensor | null;
  dcy: Tensor | null;
  accumulate: boolean;
  dweights: Tensor;
}

export class Recurrent {
  readonly mode: RecurrentMode;
  readonly inputSize: number;
  readonly hiddenSize: number;
  readonly numLayers: number;
  readonly bidirectional: boolean;
  readonly dropout: number;
  readonly inputMode: 'linear' | 'skip';
  readonly batchFirst: boolean;
  readonly projSize: number;
  readonly cellClip: number;
  readonly peepholes: boolean;
  readonly linearBeforeReset: boolean;
  readonly device: Device;
  readonly seed: number;
  /** What the last forward or backward ran (null before the first). */
  lastRun: RecurrentRunInfo | null = null;

  private readonly layoutConfig: RecurrentLayoutConfig;
  private readonly nativeConfig: NativeConfig;
  private readonly weightsTensor: Tensor;
  private weightsVersion = 0;
  /** The weights on a CUDA device and the weightsVersion they hold (-1: stale). */
  private deviceWeights: { tensor: Tensor; version: number } | null = null;
  private dropoutCalls = 0;
  private disposedFlag = false;

  constructor(options: RecurrentOptions) {
    if (options === undefined) throw argError('Recurrent needs options { mode, inputSize, hiddenSize }');
    const o = checkKeys(options, OPTION_KEYS, 'Recurrent option');
    this.mode = o.mode as RecurrentMode;
    this.inputSize = o.inputSize as number;
    this.hiddenSize = o.hiddenSize as number;
    this.numLayers = (o.numLayers ?? 1) as number;
    this.bidirectional = optBool(o.bidirectional, 'bidirectional', false);
    this.inputMode = (o.inputMode ?? 'linear') as 'linear' | 'skip';
    this.batchFirst = optBool(o.batchFirst, 'batchFirst', false);
    this.projSize = (o.projSize ?? 0) as number;
    this.peepholes = optBool(o.peepholes, 'peepholes', false);
    this.linearBeforeReset = optBool(o.linearBeforeReset, 'linearBeforeReset', true);
    const dropout = o.dropout ?? 0;
    if (typeof dropout !== 'number' || !(dropout >= 0 && dropout < 1) || Math.fround(dropout) >= 1) {
      throw argError(`dropout must be a number in [0, 1) (got ${String(dropout)})`);
    }
    this.dropout = dropout;
    const cellClip = o.cellClip ?? 0;
    if (typeof cellClip !== 'number' || !Number.isFinite(cellClip) || cellClip < 0) {
      throw argError(`cellClip must be a finite number >= 0 (got ${String(cellClip)})`);
    }
    if (cellClip > 0 && this.mode !== 'lstm') throw argError('cellClip applies to mode lstm only');
    this.cellClip = cellClip;
    this.layoutConfig = {
      mode: this.mode, inputSize: this.inputSize, hiddenSize: this.hiddenSize, numLayers: this.numLayers,
      bidirectional: this.bidirectional, inputMode: this.inputMode, projSize: this.projSize,
      peepholes: this.peepholes, linearBeforeReset: this.linearBeforeReset,
    };
    // Validates mode, sizes, input mode, projection and peepholes (ERR_RNNKIT_ARG).
    const size = weightsSize(this.layoutConfig);
    this.device = resolveDevice(o.device as DeviceSpec | undefined);
    this.seed = o.seed === undefined ? randomInt(0, 2 ** 47) : checkSeed(o.seed, 'seed');
    this.nativeConfig = {
      mode: this.mode, inputSize: this.inputSize, hiddenSize: this.hiddenSize, numLayers: this.numLayers,
      bidirectional: this.bidirectional, skipInput: this.inputMode === 'skip', projSize: this.projSize,
      cellClip: this.cellClip, peepholes: this.peepholes, linearBeforeReset: this.linearBeforeReset,
    };
    const nativeSize = binding().recurrentWeightsSize(this.nativeConfig);
    if (nativeSize !== size) {
      throw new RnnkitError('ERR_RNNKIT_INTERNAL', `packed weights: lib counts ${size} values, the kernels ${nativeSize}`);
    }
    this.weightsTensor = Tensor.fromCpu(initWeights(this.layoutConfig, this.seed), [size]);
  }

  /** Number of directions (2 when bidirectional). */
  get numDirections(): number {
    return this.bidirectional ? 2 : 1;
  }

  /** Size of h: projSize when set, else hiddenSize. */
  get stateSize(): number {
    return this.projSize > 0 ? this.projSize : this.hiddenSize;
  }

  /** The packed weights (a CPU tensor; writes through `data` change the op). */
  get weights(): Tensor {
    this.assertLive();
    // The caller may write through `data`: the device copy is refreshed before the next CUDA run.
    if (this.deviceWeights) this.deviceWeights.version = -1;
    return this.weightsTensor;
  }

  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** What the next run would use: device, ISA path and algorithm. */
  get algorithm(): { device: Device; isa: string; algorithm: string; fallback: string | null } {
    const info = binding().recurrentInfo();
    if (this.device !== 'cpu' && cudaBinding() !== null) {
      return { device: this.device, isa: info.isa, algorithm: 'standard | persistent (chosen by shape)', fallback: null };
    }
    return { device: 'cpu', isa: info.isa, algorithm: info.algorithm, fallback: this.fallbackReason(null) };
  }

  /** Runs off the event loop. */
  async forward(x: Tensor, options?: RecurrentForwardOptions): Promise<RecurrentForwardResult> {
    const p = this.planForward(x, options);
    if (this.onCuda(p.x.device)) {
      const w = await this.deviceWeightsAsync(p.x.device);
      return this.cudaForward(p, w, true) as Promise<RecurrentForwardResult>;
    }
    const [hx, xs, cx] = await Promise.all([hostAsync(p.hx), hostAsync(p.x), hostAsync(p.cx)]);
    const out = this.forwardOutputs(p, xs as Float32Array, hx, cx);
    await this.callForward(p, out, true);
    return this.forwardResult(p, out);
  }

  forwardSync(x: Tensor, options?: RecurrentForwardOptions): RecurrentForwardResult {
    const p = this.planForward(x, options);
    if (this.onCuda(p.x.device)) {
      return this.cudaForward(p, this.deviceWeightsSync(p.x.device), false) as RecurrentForwardResult;
    }
    const out = this.forwardOutputs(p, hostSync(p.x) as Float32Array, hostSync(p.hx), hostSync(p.cx));
    this.callForward(p, out, false);
    return this.forwardResult(p, out);
  }

  /** Runs off the event loop. */
  async backward(saved: RecurrentSaved, options?: RecurrentBackwardOptions): Promise<RecurrentGradients> {
    const p = this.planBackward(saved, options);
    if (p.saved.cuda) {
      const dev = (p.saved.inputs[0] as Tensor).device;
      return this.cudaBackward(p, await this.deviceWeightsAsync(dev), true) as Promise<RecurrentGradients>;
    }
    const [dy, dhy, dcy] = await Promise.all([hostAsync(p.dy), hostAsync(p.dhy), hostAsync(p.dcy)]);
    const out = this.backwardOutputs(p);
    await this.callBackward(p, out, dy, dhy, dcy, true);
    return this.backwardResult(p, out);
  }

  backwardSync(saved: RecurrentSaved, options?: RecurrentBackwardOptions): RecurrentGradients {
    const p = this.planBackward(saved, options);
    if (p.saved.cuda) {
      const dev = (p.saved.inputs[0] as Tensor).device;
      return this.cudaBackward(p, this.deviceWeightsSync(dev), false) as RecurrentGradients;
    }
    const out = this.backwardOutputs(p);
    this.callBackward(p, out, hostSync(p.dy), hostSync(p.dhy), hostSync(p.dcy), false);
    return this.backwardResult(p, out);
  }

  /** A copy of one parameter block (Caffe2 RecurrentParamGet): [rows, cols], or [rows] for vectors. */
  getParam(selector: ParamSelector): Tensor {
    const slot = this.slot(selector);
    const values = this.weightsTensor.data.slice(slot.offset, slot.offset + slot.rows * slot.cols);
    return Tensor.fromCpu(values, slot.cols === 1 ? [slot.rows] : [slot.rows, slot.cols]);
  }

  /** Overwrites one parameter block (Caffe2 RecurrentParamSet) with as many values as it holds. */
  setParam(selector: ParamSelector, values: Float32Array | Tensor): void {
    const slot = this.slot(selector);
    const src = this.hostValues(values, 'values');
    if (src.length !== slot.rows * slot.cols) {
      throw shapeError(`values has ${src.length} elements; this block holds ${slot.rows}×${slot.cols} = ${slot.rows * slot.cols}`);
    }
    this.weightsTensor.data.set(src, slot.offset);
    this.weightsVersion++;
  }

  /** Loads a PyTorch / ONNX / Keras weight record (see lib/recurrent-params.ts for the names). */
  importWeights(format: WeightsFormat, record: Record<string, Float32Array | Tensor>): void {
    this.assertLive();
    const w = this.weightsTensor;
    if (typeof record !== 'object' || record === null) throw argError('record must be an object');
    const plain: WeightsRecord = {};
    for (const [name, v] of Object.entries(record)) {
      plain[name] = v instanceof Tensor ? this.hostValues(v, name) : v;
    }
    importWeights(this.layoutConfig, w.data, format, plain);
    this.weightsVersion++;
  }

  /** The weights as a record of `format`: name -> Float32Array in that format's layout. */
  exportWeights(format: WeightsFormat): WeightsRecord {
    this.assertLive();
    return exportWeights(this.layoutConfig, this.weightsTensor.data, format);
  }

  /** Releases the weights; the op cannot be used afterwards. Idempotent. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.weightsTensor.dispose();
    this.deviceWeights?.tensor.dispose();
    this.deviceWeights = null;
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  private assertLive(): void {
    if (this.disposedFlag) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'this Recurrent op has been disposed');
  }

  private slot(selector: ParamSelector) {
    this.assertLive();
    if (typeof selector !== 'object' || selector === null) {
      throw argError('selector must be an object { layer, direction, kind, gate? }');
    }
    // Checked here because paramSlot looks kinds up in a plain object, where '__proto__' or
    // 'constructor' would resolve to something.
    if (!PARAM_KINDS.includes(selector.kind)) {
      throw argError(`kind must be one of ${PARAM_KINDS.join(' ')} (got ${String(selector.kind)})`);
    }
    return paramSlot(this.layoutConfig, selector);
  }

  private hostValues(v: unknown, what: string): Float32Array {
    if (v instanceof Tensor) {
      v.assertLive(what);
      return hostSync(v) as Float32Array;
    }
    if (!(v instanceof Float32Array)) throw new RnnkitError('ERR_RNNKIT_DTYPE', `${what} must be a Float32Array or a Tensor`);
    return v;
  }

  private fallbackReason(inputDevice: Device | null): string | null {
    if (this.device !== 'cpu') {
      if (cudaBinding() === null) return `the loaded rnnkit binary has no CUDA Recurrent kernels: ran on the CPU instead of ${this.device}`;
      if (inputDevice === 'cpu') return `inputs are on the CPU: ran on the CPU instead of ${this.device}`;
      if (inputDevice !== null && inputDevice !== this.device) {
        return `inputs on ${inputDevice}, op on ${this.device}: ran on the CPU`;
      }
      if (inputDevice !== null) return `the saved comes from a CPU forward: ran on the CPU instead of ${this.device}`;
      return null;
    }
    if (inputDevice !== null && inputDevice !== 'cpu') return `inputs on ${inputDevice} were copied to the CPU`;
    return null;
  }

  /** Whether a run with x on `inputDevice` takes the CUDA kernels. */
  private onCuda(inputDevice: Device): boolean {
    return this.device !== 'cpu' && inputDevice === this.device && cudaBinding() !== null;
  }

  /** The weights on `device`, uploaded when missing or stale. */
  private deviceWeightsSync(device: Device): Tensor {
    const cached = this.freshDeviceWeights(device);
    if (cached) return cached;
    const t = this.weightsTensor.to(device);
    this.keepDeviceWeights(t, this.weightsVersion);
    return t;
  }

  private async deviceWeightsAsync(device: Device): Promise<Tensor> {
    const cached = this.freshDeviceWeights(device);
    if (cached) return cached;
    const version = this.weightsVersion;
    const host = this.weightsTensor.data.slice();
    const t = deviceTensor(device, this.weightsTensor.shape);
    try {
      await native().copyToDevice(t.deviceBuffer, host, true);
    } catch (err) {
      t.dispose();
      throw err;
    }
    this.keepDeviceWeights(t, version);
    return t;
  }

  private freshDeviceWeights(device: Device): Tensor | null {
    const dw = this.deviceWeights;
    return dw && dw.version === this.weightsVersion && dw.tensor.device === device && !dw.tensor.disposed ? dw.tensor : null;
  }

  // The previous copy is not disposed here: a run still in flight may be using it; the GC frees it.
  private keepDeviceWeights(t: Tensor, version: number): void {
    this.deviceWeights = { tensor: t, version };
  }

  /** x's device copy of an optional input (a new tensor, listed in `owned`, when it was elsewhere). */
  private static onDevice(t: Tensor | null, device: Device, owned: Tensor[]): Tensor | null {
    if (t === null || t.device === device) return t;
    const moved = t.to(device);
    owned.push(moved);
    return moved;
  }

  private cudaForward(p: ForwardPlan, w: Tensor, async: boolean): Promise<RecurrentForwardResult> | RecurrentForwardResult {
    const dev = p.x.device;
    const LD = this.numLayers * this.numDirections;
    const owned: Tensor[] = [];
    const outs: Tensor[] = [];
    const buf = (t: Tensor | null): Buf => (t === null ? null : t.deviceBuffer);
    let call: MaybeAlgorithm;
    let y: Tensor, hy: Tensor, cy: Tensor | null, activations: Tensor | null;
    let hx: Tensor | null, cx: Tensor | null;
    try {
      hx = Recurrent.onDevice(p.hx, dev, owned);
      cx = Recurrent.onDevice(p.cx, dev, owned);
      y = deviceTensor(dev, p.yShape);
      outs.push(y);
      hy = deviceTensor(dev, [LD, p.B, this.stateSize]);
      outs.push(hy);
      cy = this.mode === 'lstm' ? deviceTensor(dev, [LD, p.B, this.hiddenSize]) : null;
      if (cy) outs.push(cy);
      activations = p.training
        ? deviceTensor(dev, [binding().recurrentSavedSize(this.nativeConfig, p.T, p.B)])
        : null;
      if (activations) owned.push(activations);
      call = (cudaBinding() as CudaRecurrentBinding).cudaRecurrentForward(this.nativeConfig, p.T, p.B,
        this.batchFirst, p.x.deviceBuffer, buf(hx), buf(cx), p.seqLengths, w.deviceBuffer, p.dropout, p.dropoutSeed,
        y.deviceBuffer, hy.deviceBuffer, buf(cy), buf(activations), 'auto', async);
    } catch (err) {
      [...outs, ...owned].forEach((t) => t.dispose());
      throw err;
    }
    const finish = (algorithm: string): RecurrentForwardResult => {
      this.recordCuda('forward', dev, algorithm, p.training, p.dropout, p.dropoutSeed);
      const saved = activations === null ? null : new RecurrentSaved({
        owner: this, T: p.T, B: p.B, inputs: [p.x, p.hx, p.cx], weightsVersion: this.weightsVersion,
        dropout: p.dropout, dropoutSeed: p.dropoutSeed, xShape: p.x.shape, yShape: p.yShape, data: null,
        cuda: { y, hx, cx, seqLengths: p.seqLengths, activations, owned },
      });
      if (saved === null) owned.forEach((t) => t.dispose());
      return { y, hy, cy, saved };
    };
    if (!async) return finish(call as string);
    return (call as Promise<string>).then(finish, (err: unknown) => {
      [...outs, ...owned].forEach((t) => t.dispose());
      throw err;
    });
  }

  private cudaBackward(p: BackwardPlan, w: Tensor, async: boolean): Promise<RecurrentGradients> | RecurrentGradients {
    const s = p.saved;
    const g = s.cuda as CudaSaved;
    const x = s.inputs[0] as Tensor;
    const dev = x.device;
    g.y.assertLive('y of the forward');
    const LD = this.numLayers * this.numDirections;
    const temps: Tensor[] = [];
    const outs: Tensor[] = [];
    const buf = (t: Tensor | null): Buf => (t === null ? null : t.deviceBuffer);
    let call: MaybeAlgorithm;
    let dx: Tensor, dhx: Tensor, dcx: Tensor | null, dw: Tensor;
    try {
      const dy = Recurrent.onDevice(p.dy, dev, temps);
      const dhy = Recurrent.onDevice(p.dhy, dev, temps);
      const dcy = Recurrent.onDevice(p.dcy, dev, temps);
      dx = deviceTensor(dev, s.xShape);
      outs.push(dx);
      dhx = deviceTensor(dev, [LD, s.B, this.stateSize]);
      outs.push(dhx);
      dcx = this.mode === 'lstm' ? deviceTensor(dev, [LD, s.B, this.hiddenSize]) : null;
      if (dcx) outs.push(dcx);
      // The gradients are computed on the device, then land in the CPU dweights tensor.
      dw = p.accumulate ? p.dweights.to(dev) : deviceTensor(dev, p.dweights.shape);
      temps.push(dw);
      call = (cudaBinding() as CudaRecurrentBinding).cudaRecurrentBackward(this.nativeConfig, s.T, s.B,
        this.batchFirst, x.deviceBuffer, buf(g.hx), buf(g.cx), g.seqLengths, w.deviceBuffer, s.dropout, s.dropoutSeed,
        g.y.deviceBuffer, g.activations.deviceBuffer, buf(dy), buf(dhy), buf(dcy), dx.deviceBuffer, dhx.deviceBuffer,
        buf(dcx), dw.deviceBuffer, p.accumulate, async);
    } catch (err) {
      [...outs, ...temps].forEach((t) => t.dispose());
      throw err;
    }
    const result = (): RecurrentGradients => ({ dx, dhx, dcx, dweights: p.dweights });
    const cleanupOnError = (err: unknown): never => {
      [...outs, ...temps].forEach((t) => t.dispose());
      throw err;
    };
    if (!async) {
      try {
        this.recordCuda('backward', dev, call as string, true, s.dropout, s.dropoutSeed);
        native().copyToHost(dw.deviceBuffer, p.dweights.data, false);
      } catch (err) {
        cleanupOnError(err);
      }
      temps.forEach((t) => t.dispose());
      return result();
    }
    return (call as Promise<string>).then(async (algorithm) => {
      this.recordCuda('backward', dev, algorithm, true, s.dropout, s.dropoutSeed);
      await native().copyToHost(dw.deviceBuffer, p.dweights.data, true);
      temps.forEach((t) => t.dispose());
      return result();
    }).catch(cleanupOnError);
  }

  private recordCuda(op: 'forward' | 'backward', device: Device, algorithm: string, training: boolean, dropout: number,
    dropoutSeed: number): void {
    this.lastRun = {
      op, device, requestedDevice: this.device, isa: binding().recurrentInfo().isa, algorithm,
      fallback: null, training, dropout, dropoutSeed,
    };
  }

  private nextDropoutSeed(): number {
    const k = BigInt(this.dropoutCalls++);
    return Number(BigInt.asUintN(53, BigInt(this.seed) * 0x9e3779b97f4a7c15n + k * 0xd1b54a32d192ed03n + k));
  }

  private planForward(x: Tensor, options: RecurrentForwardOptions | undefined): ForwardPlan {
    this.assertLive();
    const o = checkKeys(options, FORWARD_KEYS, 'forward option');
    checkTensor(x, 'x', 3);
    this.weightsTensor.assertLive('weights');
    const T = this.batchFirst ? x.shape[1] : x.shape[0];
    const B = this.batchFirst ? x.shape[0] : x.shape[1];
    if (x.shape[2] !== this.inputSize) {
      throw shapeError(`x must be [${this.batchFirst ? 'B, T' : 'T, B'}, ${this.inputSize}], got [${x.shape.join(', ')}]`);
    }
    const LD = this.numLayers * this.numDirections;
    const hx = optTensor(o.hx, 'hx', [LD, B, this.stateSize]);
    if (this.mode !== 'lstm' && o.cx !== undefined && o.cx !== null) throw argError('cx applies to mode lstm only');
    const cx = optTensor(o.cx, 'cx', [LD, B, this.hiddenSize]);
    const seqLengths = this.checkLengths(o.seqLengths, T, B);
    checkInputsFinite({ x, hx, cx, weights: this.weightsTensor });
    const training = optBool(o.training, 'training', false);
    const dropoutOn = optBool(o.dropout, 'dropout', training);
    const dropout = dropoutOn && this.numLayers > 1 ? this.dropout : 0;
    let dropoutSeed = 0;
    if (o.dropoutSeed !== undefined) dropoutSeed = checkSeed(o.dropoutSeed, 'dropoutSeed');
    else if (dropout > 0) dropoutSeed = this.nextDropoutSeed();
    const DR = this.numDirections * this.stateSize;
    const yShape = this.batchFirst ? [B, T, DR] : [T, B, DR];
    return { T, B, x, hx, cx, seqLengths, training, dropout, dropoutSeed, yShape };
  }

  private checkLengths(v: unknown, T: number, B: number): Int32Array | null {
    if (v === undefined || v === null) return null;
    if (!(v instanceof Int32Array)) throw new RnnkitError('ERR_RNNKIT_DTYPE', 'seqLengths must be an Int32Array');
    if (v.length !== B) throw shapeError(`seqLengths must hold B = ${B} values, got ${v.length}`);
    // A copy: the async kernel must see the values checked here even if the caller writes later.
    const lens = v.slice();
    for (let b = 0; b < B; b++) {
      if (lens[b] < 0 || lens[b] > T) throw argError(`seqLengths[${b}] = ${lens[b]} is outside 0..${T}`);
    }
    return lens;
  }

  private forwardOutputs(p: ForwardPlan, x: Float32Array, hx: F32, cx: F32) {
    const LD = this.numLayers * this.numDirections;
    const saved = p.training
      ? new Float32Array(binding().recurrentSavedSize(this.nativeConfig, p.T, p.B))
      : null;
    return {
      x, hx, cx,
      y: new Float32Array(p.T * p.B * this.numDirections * this.stateSize),
      hy: new Float32Array(LD * p.B * this.stateSize),
      cy: this.mode === 'lstm' ? new Float32Array(LD * p.B * this.hiddenSize) : null,
      saved,
    };
  }

  private callForward(p: ForwardPlan, out: ReturnType<Recurrent['forwardOutputs']>, async: boolean): MaybePromise {
    this.record('forward', p.x.device, p.training, p.dropout, p.dropoutSeed);
    return binding().recurrentForward(this.nativeConfig, p.T, p.B, this.batchFirst, out.x, out.hx, out.cx,
      p.seqLengths, this.weightsTensor.data, p.dropout, p.dropoutSeed, out.y, out.hy, out.cy, out.saved, async);
  }

  private forwardResult(p: ForwardPlan, out: ReturnType<Recurrent['forwardOutputs']>): RecurrentForwardResult {
    const LD = this.numLayers * this.numDirections;
    const dev = p.x.device;
    const place = (a: Float32Array, shape: readonly number[]): Tensor => {
      const t = Tensor.fromCpu(a, shape);
      return dev === 'cpu' ? t : t.to(dev);
    };
    const y = place(out.y, p.yShape);
    const saved = out.saved === null ? null : new RecurrentSaved({
      owner: this, T: p.T, B: p.B, inputs: [p.x, p.hx, p.cx], weightsVersion: this.weightsVersion,
      dropout: p.dropout, dropoutSeed: p.dropoutSeed, xShape: p.x.shape, yShape: p.yShape,
      data: { x: out.x, hx: out.hx, cx: out.cx, seqLengths: p.seqLengths, y: out.y, activations: out.saved },
      cuda: null,
    });
    return {
      y,
      hy: place(out.hy, [LD, p.B, this.stateSize]),
      cy: out.cy === null ? null : place(out.cy, [LD, p.B, this.hiddenSize]),
      saved,
    };
  }

  private planBackward(saved: RecurrentSaved, options: RecurrentBackwardOptions | undefined): BackwardPlan {
    this.assertLive();
    const o = checkKeys(options, BACKWARD_KEYS, 'backward option');
    if (!(saved instanceof RecurrentSaved)) {
      throw argError('backward needs the saved of a training forward: forward(x, { training: true }).saved');
    }
    if (saved.owner !== this) throw argError('this saved comes from another Recurrent op');
    if (saved.released) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'this saved has been released');
    const names = ['x', 'hx', 'cx'];
    saved.inputs.forEach((t, k) => t?.assertLive(`${names[k]} of the forward`));
    this.weightsTensor.assertLive('weights');
    if (saved.weightsVersion !== this.weightsVersion) {
      throw argError('the weights changed (setParam / importWeights) since the forward that made this saved');
    }
    const LD = this.numLayers * this.numDirections;
    const dy = optTensor(o.dy, 'dy', saved.yShape);
    const dhy = optTensor(o.dhy, 'dhy', [LD, saved.B, this.stateSize]);
    if (this.mode !== 'lstm' && o.dcy !== undefined && o.dcy !== null) throw argError('dcy applies to mode lstm only');
    const dcy = optTensor(o.dcy, 'dcy', [LD, saved.B, this.hiddenSize]);
    checkInputsFinite({ dy, dhy, dcy });
    const accumulate = optBool(o.accumulate, 'accumulate', false);
    let dweights: Tensor;
    if (o.dweights !== undefined && o.dweights !== null) {
      dweights = checkTensor(o.dweights, 'dweights');
      if (dweights.size !== this.weightsTensor.size) {
        throw shapeError(`dweights must hold ${this.weightsTensor.size} values, got [${dweights.shape.join(', ')}]`);
      }
      if (dweights.device !== 'cpu') throw new RnnkitError('ERR_RNNKIT_DEVICE', 'dweights must be a CPU tensor, like the weights');
    } else if (accumulate) {
      throw argError('accumulate needs a dweights tensor to add into');
    } else {
      dweights = Tensor.fromCpu(new Float32Array(this.weightsTensor.size), this.weightsTensor.shape);
    }
    return { saved, dy, dhy, dcy, accumulate, dweights };
  }

  private backwardOutputs(p: BackwardPlan) {
    const LD = this.numLayers * this.numDirections;
    const B = p.saved.B;
    return {
      dx: new Float32Array(p.saved.T * B * this.inputSize),
      dhx: new Float32Array(LD * B * this.stateSize),
      dcx: this.mode === 'lstm' ? new Float32Array(LD * B * this.hiddenSize) : null,
    };
  }

  private callBackward(p: BackwardPlan, out: ReturnType<Recurrent['backwardOutputs']>, dy: F32, dhy: F32, dcy: F32,
    async: boolean): MaybePromise {
    const s = p.saved;
    const d = s.data as NonNullable<RecurrentSaved['data']>;
    const x = s.inputs[0] as Tensor;
    this.record('backward', x.device, true, s.dropout, s.dropoutSeed);
    return binding().recurrentBackward(this.nativeConfig, s.T, s.B, this.batchFirst, d.x, d.hx, d.cx, d.seqLengths,
      this.weightsTensor.data, s.dropout, s.dropoutSeed, d.y, d.activations, dy, dhy, dcy, out.dx, out.dhx, out.dcx,
      p.dweights.data, p.accumulate, async);
  }

  private backwardResult(p: BackwardPlan, out: ReturnType<Recurrent['backwardOutputs']>): RecurrentGradients {
    const LD = this.numLayers * this.numDirections;
    const B = p.saved.B;
    const dev = (p.saved.inputs[0] as Tensor).device;
    const place = (a: Float32Array, shape: readonly number[]): Tensor => {
      const t = Tensor.fromCpu(a, shape);
      return dev === 'cpu' ? t : t.to(dev);
    };
    return {
      dx: place(out.dx, p.saved.xShape),
      dhx: place(out.dhx, [LD, B, this.stateSize]),
      dcx: out.dcx === null ? null : place(out.dcx, [LD, B, this.hiddenSize]),
      dweights: p.dweights,
    };
  }

  private record(op: 'forward' | 'backward', inputDevice: Device, training: boolean, dropout: number, dropoutSeed: number): void {
    const info = binding().recurrentInfo();
    this.lastRun = {
      op, device: 'cpu', requestedDevice: this.device, isa: info.isa, algorithm: info.algorithm,
      fallback: this.fallbackReason(inputDevice), training, dropout, dropoutSeed,
    };
  }
}
