/**
 * Recurrent: the fused multi-layer LSTM / GRU / RNN operator (DESIGN §4, docs/recurrent-semantics.md)
 * over the kernels of native/kernels/recurrent.h and cuda/cuda_recurrent.h.
 *
 * Contract:
 * - `weights` is one packed CPU Tensor (layout in the semantics doc), drawn like PyTorch from `seed`.
 * - `forward(x, { hx, cx, seqLengths, training, dropout, dropoutSeed })` -> `{ y, hy, cy, saved }`;
 *   `saved` is non-null only when training and holds what `backward` needs: references to x, hx,
 *   cx, the weights (with their version), y, the saved activations (`savedSize(T, B)` floats) and
 *   the dropout seed. x, hx, cx and y must not be modified before the backward (disposing them is
 *   detected; writes through `data` are not). Each dropout forward draws a fresh mask unless
 *   `dropoutSeed` is given.
 * - `backward(saved, { dy, dhy, dcy, accumulate, dweights })` -> `{ dx, dhx, dcx, dweights }`;
 *   dx, dhx, dcx are new; dweights is new, or the given tensor overwritten, or added into with
 *   `accumulate`. Weight changes through setParam/importWeights between forward and backward are
 *   refused (the gradients would mix two sets of weights).
 * - Every bad input throws RnnkitError with a code before any native call (recurrent-config.ts);
 *   the binding checks everything again.
 * - CUDA: an op created for a CUDA device, given x on that device, runs the CUDA kernels with its
 *   own packed weights on the device (recurrent-cuda.ts `DeviceWeights`), uploaded on first use
 *   and after setParam / importWeights or a write through `weights.data`, and written in place by
 *   the optimizers through nn.LSTM / GRU / RNN parameters (device views of them); host reads
 *   (`weights`, getParam, exportWeights, a CPU run) download them first when the device copy moved.
 *   Writes on both sides since they last matched throw ERR_RNNKIT_ARG. hx, cx, dy, dhy, dcy on
 *   another device are copied over; outputs and `saved` stay on the device; `dweights` is a new
 *   CPU tensor, or the given one: on the device it is written there with no host copy. The
 *   forward runs the `algorithm` option
 *   ('auto': chosen by shape; 'standard'; 'persistent'), and `lastRun.algorithm` names the one that
 *   ran. Any other combination (a CPU op, CPU inputs, inputs on another device, a saved made on
 *   the CPU) runs on the CPU (recurrent-cpu.ts), outputs go back to x's device, and
 *   `lastRun.fallback` says why.
 *
 * Examples: [Recurrent](../README.md#recurrent-lstm-gru-rnn-tanh-rnn-relu); semantics and layout: [docs/recurrent-semantics.md](../docs/recurrent-semantics.md).
 * @module
 */
import { RnnkitError } from './errors';
import { Device, deviceIndex } from './device';
import { native } from './native';
import { checkHostAllocation, isInstance, readInteger, readRecord, shapeError } from './args';
import { Tensor, isTensor } from './tensor';
import {
  ParamSelector, RecurrentMode, WeightsFormat, WeightsRecord, exportWeights, importWeights, initWeights, paramSlot,
  recordShapes, weightsSize,
} from './recurrent-params';
import {
  RecurrentAlgorithm, RecurrentBackwardOptions, RecurrentConfig, RecurrentForwardOptions, RecurrentForwardResult,
  RecurrentGradients, RecurrentOptions, RecurrentSettings, planBackward, planForward,
  readRecurrentConfig, settingsOf,
} from './recurrent-config';
import { RecurrentSaved } from './recurrent-saved';
import { cpuBackward, cpuBackwardSync, cpuForward, cpuForwardSync } from './recurrent-cpu';
import { CudaRun, DeviceWeights, cudaBackward, cudaForward } from './recurrent-cuda';
import { RecurrentAlgorithmInfo, RecurrentRunInfo, fallbackReason, runInfo } from './recurrent-run';

export {
  RecurrentAlgorithm, RecurrentBackwardOptions, RecurrentForwardOptions, RecurrentForwardResult, RecurrentGradients,
  RecurrentOptions, RecurrentSaved, RecurrentAlgorithmInfo, RecurrentRunInfo, RecurrentSettings,
};

/** The option fields (mode, inputSize, ..., device, seed, algorithm), declared once in RecurrentSettings. */
export interface Recurrent extends RecurrentSettings {}

/** The fused multi-layer LSTM / GRU / RNN operator: packed weights and their forward and backward. */
export class Recurrent {
  /** What the last forward or backward ran (null before the first). */
  lastRun: RecurrentRunInfo | null = null;

  /** @internal The checked options and derived sizes. */ readonly config: RecurrentConfig;
  /** @internal The packed weights on the host (on a CUDA op, synced with the device copy on demand). */ readonly hostWeights: Tensor;
  /** CUDA ops: the packed weights on the device and their bookkeeping (null for a CPU op). */
  private readonly deviceWeights: DeviceWeights | null;
  private hostEdits = 0;
  private dropoutCalls = 0;
  private disposedFlag = false;

  /**
   * Checks the options, fills in the defaults and draws the packed weights from `seed` (as
   * PyTorch initializes them). Throws ERR_RNNKIT_ARG naming a bad option, ERR_RNNKIT_DEVICE for a
   * device that is not available, ERR_RNNKIT_OOM when the weights would not fit in memory.
   */
  constructor(options: RecurrentOptions) {
    const c = readRecurrentConfig(options);
    this.config = c;
    Object.assign(this, settingsOf(c));
    const size = weightsSize(c.layout);
    checkHostAllocation('new Recurrent', [{ what: `the packed weights (${describeSizes(c)})`, floats: size }]);
    const nativeSize = native().recurrentWeightsSize(c.native);
    if (nativeSize !== size) {
      throw new RnnkitError('ERR_RNNKIT_INTERNAL', `packed weights: lib counts ${size} values, the kernels ${nativeSize}`);
    }
    this.hostWeights = Tensor.fromCpu(initWeights(c.layout, c.seed), [size]);
    this.deviceWeights = c.device === 'cpu' ? null : new DeviceWeights(c.device);
  }

  /** @internal Changes every change of the weights: setParam, importWeights, writes on the device or through `weights.data`. */
  get weightsVersion(): number {
    return this.hostEdits + (this.deviceWeights ? this.deviceWeights.edits() : 0);
  }

  /**
   * @internal The packed weights on the op's CUDA device (uploaded now when the host copy is
   * ahead): the tensor the CUDA runs read, updated in place; nn modules view it. ERR_RNNKIT_DEVICE on a CPU op.
   */
  deviceWeightsSync(): Tensor {
    this.assertLive();
    if (!this.deviceWeights) throw new RnnkitError('ERR_RNNKIT_DEVICE', 'a CPU Recurrent op keeps no device weights');
    return this.deviceWeights.toDeviceSync(this.hostWeights);
  }

  /** Number of directions (2 when bidirectional). */
  get numDirections(): number {
    return this.config.numDirections;
  }

  /** Size of h: projSize when set, else hiddenSize. */
  get stateSize(): number {
    return this.config.stateSize;
  }

  /**
   * The packed weights (a CPU tensor; writes through `data` change the op). On a CUDA op it is the
   * host copy, brought up to date first; writes through `data` reach the device at the next run
   * or host read, after which read `weights` again to write again.
   */
  get weights(): Tensor {
    this.assertLive();
    this.deviceWeights?.handOut(this.hostWeights);
    return this.hostWeights;
  }

  /** Whether `dispose()` has run. */
  get disposed(): boolean {
    return this.disposedFlag;
  }

  /** Float32 values a training forward of T steps and batch B keeps in its saved (the same on CPU and CUDA). */
  savedSize(T: number, B: number): number {
    return native().recurrentSavedSize(this.config.native, readInteger(T, 'T', 0, 2 ** 31), readInteger(B, 'B', 0, 2 ** 31));
  }

  /** Name → shape of every array of a `format` weight record of this op (see importWeights). */
  recordShapes(format: WeightsFormat): Record<string, number[]> {
    return recordShapes(this.config.layout, format);
  }

  /** What a forward of T steps and batch B with x on the op's device would use: device, ISA path and algorithm. */
  algorithmFor(T: number, B: number): RecurrentAlgorithmInfo {
    const steps = readInteger(T, 'T', 0, 2 ** 31);
    const batch = readInteger(B, 'B', 0, 2 ** 31);
    const isa = native().recurrentInfo().isa;
    if (this.device === 'cpu') {
      return { device: 'cpu', isa, algorithm: native().recurrentInfo().algorithm, algorithmReason: null, fallback: null };
    }
    const args = [this.config.native, steps, batch, deviceIndex(this.device), this.algorithm] as const;
    return {
      device: this.device, isa, algorithm: native().cudaRecurrentAlgorithm(...args),
      algorithmReason: native().cudaRecurrentAlgorithmReason(...args), fallback: null,
    };
  }

  /** Runs off the event loop. */
  async forward(x: Tensor, options?: RecurrentForwardOptions): Promise<RecurrentForwardResult> {
    const p = this.plan(x, options);
    const dw = this.deviceWeights;
    if (dw && this.onCuda(p.x.device)) {
      const w = await dw.toDevice(this.hostWeights);
      const run = await dw.track(cudaForward(this, p, w, true) as Promise<CudaRun<RecurrentForwardResult>>);
      this.recordCuda('forward', p.x.device, run, p.training, p.dropout, p.dropoutSeed);
      return run.result;
    }
    dw?.toHostSync(this.hostWeights);
    const result = await cpuForward(this, p);
    this.recordCpu('forward', p.x.device, p.training, p.dropout, p.dropoutSeed);
    return result;
  }

  /** Runs on the calling thread. */
  forwardSync(x: Tensor, options?: RecurrentForwardOptions): RecurrentForwardResult {
    const p = this.plan(x, options);
    const dw = this.deviceWeights;
    if (dw && this.onCuda(p.x.device)) {
      const w = dw.toDeviceSync(this.hostWeights);
      const run = cudaForward(this, p, w, false) as CudaRun<RecurrentForwardResult>;
      this.recordCuda('forward', p.x.device, run, p.training, p.dropout, p.dropoutSeed);
      return run.result;
    }
    dw?.toHostSync(this.hostWeights);
    const result = cpuForwardSync(this, p);
    this.recordCpu('forward', p.x.device, p.training, p.dropout, p.dropoutSeed);
    return result;
  }

  /** Runs off the event loop. */
  async backward(saved: RecurrentSaved, options?: RecurrentBackwardOptions): Promise<RecurrentGradients> {
    const p = this.planGradients(saved, options);
    const dev = p.saved.inputDevice;
    const dw = this.deviceWeights;
    if (dw && p.saved.cuda) {
      const w = await dw.toDevice(this.hostWeights);
      const run = await dw.track(cudaBackward(this, p, w, true) as Promise<CudaRun<RecurrentGradients>>);
      this.recordCuda('backward', dev, run, true, p.saved.dropout, p.saved.dropoutSeed);
      return run.result;
    }
    dw?.toHostSync(this.hostWeights);
    const result = await cpuBackward(this, p);
    this.recordCpu('backward', dev, true, p.saved.dropout, p.saved.dropoutSeed);
    return result;
  }

  /** Runs on the calling thread. */
  backwardSync(saved: RecurrentSaved, options?: RecurrentBackwardOptions): RecurrentGradients {
    const p = this.planGradients(saved, options);
    const dev = p.saved.inputDevice;
    const dw = this.deviceWeights;
    if (dw && p.saved.cuda) {
      const w = dw.toDeviceSync(this.hostWeights);
      const run = cudaBackward(this, p, w, false) as CudaRun<RecurrentGradients>;
      this.recordCuda('backward', dev, run, true, p.saved.dropout, p.saved.dropoutSeed);
      return run.result;
    }
    dw?.toHostSync(this.hostWeights);
    const result = cpuBackwardSync(this, p);
    this.recordCpu('backward', dev, true, p.saved.dropout, p.saved.dropoutSeed);
    return result;
  }

  /** A copy of one parameter block (Caffe2 RecurrentParamGet): [rows, cols], or [rows] for vectors. */
  getParam(selector: ParamSelector): Tensor {
    const slot = this.slot(selector);
    this.deviceWeights?.toHostSync(this.hostWeights);
    const values = this.hostWeights.data.slice(slot.offset, slot.offset + slot.rows * slot.cols);
    return Tensor.fromCpu(values, slot.cols === 1 ? [slot.rows] : [slot.rows, slot.cols]);
  }

  /** Overwrites one parameter block (Caffe2 RecurrentParamSet) with as many values as it holds. */
  setParam(selector: ParamSelector, values: Float32Array | Tensor): void {
    const slot = this.slot(selector);
    const src = hostValues(values, 'values');
    if (src.length !== slot.rows * slot.cols) {
      throw shapeError(`values has ${src.length} elements; this block holds ${slot.rows}×${slot.cols} = ${slot.rows * slot.cols}`);
    }
    this.deviceWeights?.toHostSync(this.hostWeights);
    this.hostWeights.data.set(src, slot.offset);
    this.hostWritten();
  }

  /** Loads a PyTorch / ONNX / Keras weight record (names: `recordShapes(format)`, lib/recurrent-params.ts). */
  importWeights(format: WeightsFormat, record: Record<string, Float32Array | Tensor>): void {
    this.assertLive();
    const plain: WeightsRecord = {};
    for (const [name, v] of Object.entries(readRecord(record, 'record'))) {
      Object.defineProperty(plain, name, { value: isTensor(v) ? hostValues(v, name) : v, enumerable: true });
    }
    this.deviceWeights?.toHostSync(this.hostWeights);
    importWeights(this.config.layout, this.hostWeights.data, format, plain);
    this.hostWritten();
  }

  /** @internal A copy of the packed weights' current values (downloaded first when the device copy moved). */
  exportPacked(): Float32Array {
    this.assertLive();
    this.deviceWeights?.toHostSync(this.hostWeights);
    return this.hostWeights.data.slice();
  }

  /** The weights as a record of `format`: name -> Float32Array in that format's layout. */
  exportWeights(format: WeightsFormat): WeightsRecord {
    this.assertLive();
    this.deviceWeights?.toHostSync(this.hostWeights);
    return exportWeights(this.config.layout, this.hostWeights.data, format);
  }

  /** Releases the weights; the op cannot be used afterwards. Idempotent. */
  dispose(): void {
    if (this.disposedFlag) return;
    this.disposedFlag = true;
    this.hostWeights.dispose();
    this.deviceWeights?.dispose();
  }

  /** `dispose()`, for `using` declarations. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** After a write of the host copy: a new version, uploaded at once when the device copy exists. */
  private hostWritten(): void {
    this.hostEdits++;
    this.hostWeights.bumpVersion();
    this.deviceWeights?.hostWritten(this.hostWeights);
  }

  private assertLive(): void {
    if (this.disposedFlag) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'this Recurrent op has been disposed');
  }

  private plan(x: Tensor, options: RecurrentForwardOptions | undefined) {
    this.assertLive();
    const weights = this.deviceWeights ? this.deviceWeights.newest(this.hostWeights) : this.hostWeights;
    return planForward(this.config, x, options, weights, () => this.nextDropoutSeed());
  }

  private planGradients(saved: RecurrentSaved, options: RecurrentBackwardOptions | undefined) {
    this.assertLive();
    return planBackward(this.config, this, saved, options, this.hostWeights, this.weightsVersion);
  }

  private slot(selector: ParamSelector) {
    this.assertLive();
    return paramSlot(this.config.layout, selector);
  }

  /** Whether a run with x on `inputDevice` takes the CUDA kernels. */
  private onCuda(inputDevice: Device): boolean {
    return this.device !== 'cpu' && inputDevice === this.device;
  }

  private nextDropoutSeed(): number {
    const k = BigInt(this.dropoutCalls++);
    return Number(BigInt.asUintN(53, BigInt(this.seed) * 0x9e3779b97f4a7c15n + k * 0xd1b54a32d192ed03n + k));
  }

  private recordCuda(op: 'forward' | 'backward', device: Device, run: { algorithm: string; reason: string },
    training: boolean, dropout: number, dropoutSeed: number): void {
    this.lastRun = runInfo({ op, device, requestedDevice: this.device, fallback: null, training, dropout, dropoutSeed },
      run.algorithm, run.reason);
  }

  private recordCpu(op: 'forward' | 'backward', inputDevice: Device, training: boolean, dropout: number,
    dropoutSeed: number): void {
    this.lastRun = runInfo({
      op, device: 'cpu', requestedDevice: this.device, fallback: fallbackReason(this.device, inputDevice), training,
      dropout, dropoutSeed,
    }, null, null);
  }
}

/** The options the packed weights' size depends on, for messages. */
function describeSizes(c: RecurrentConfig): string {
  const parts = [`mode ${c.mode}`, `inputSize ${c.inputSize}`, `hiddenSize ${c.hiddenSize}`, `numLayers ${c.numLayers}`];
  if (c.bidirectional) parts.push('bidirectional');
  if (c.projSize > 0) parts.push(`projSize ${c.projSize}`);
  return parts.join(', ');
}

/** The host values of a Float32Array or a live tensor (read back from a CUDA device). */
function hostValues(v: unknown, what: string): Float32Array {
  if (isTensor(v)) {
    v.assertLive(what);
    return v.device === 'cpu' ? v.data : v.readSync();
  }
  if (!isInstance(v, Float32Array)) throw new RnnkitError('ERR_RNNKIT_DTYPE', `${what} must be a Float32Array or a Tensor`);
  return v;
}
