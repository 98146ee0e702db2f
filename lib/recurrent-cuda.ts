/**
 * The CUDA dispatch of the Recurrent op (native/napi/cuda_recurrent_ops.cc over
 * cuda/recurrent.cu) and its device-weight cache. A run takes a checked plan whose x is on the
 * op's CUDA device: inputs on another device are copied over (and owned by the saved or freed
 * after the call), outputs and the saved stay on the device, and the weight gradients land in the
 * CPU dweights tensor. Each run returns the algorithm that ran, for `lastRun`.
 */
import { Device, deviceIndex } from './device';
import { checkDeviceAllocation } from './args';
import { DeviceBuffer, download, downloadSync, native, upload } from './native';
import { Tensor, deviceTensor } from './tensor';
import {
  BackwardPlan, ForwardPlan, RecurrentForwardResult, RecurrentGradients, RecurrentWeightsState, backwardAllocations,
  forwardAllocations, stateShapes,
} from './recurrent-config';
import { CudaSaved, MAKE_SAVED, RecurrentSaved } from './recurrent-saved';

/** A run's result, the algorithm the binding reports it ran, and why that one. */
export interface CudaRun<R> {
  result: R;
  algorithm: string;
  reason: string;
}

const BACKWARD_REASON = 'standard: the CUDA backward has one algorithm';

type Buf = DeviceBuffer | null;
const buf = (t: Tensor | null): Buf => (t === null ? null : t.deviceBuffer);
const disposeAll = (ts: Tensor[]): void => ts.forEach((t) => t.dispose());

/**
 * The weights on a CUDA device and the version of the host weights they hold: uploaded on first
 * use and again when the version moved or the copy was marked stale.
 */
export class DeviceWeights {
  private copy: { tensor: Tensor; version: number } | null = null;

  /** Marks the copy stale: the caller may write through `weights.data`. */
  invalidate(): void {
    if (this.copy) this.copy.version = -1;
  }

  /** The weights on `device`, uploaded on the calling thread when missing or stale. */
  onDeviceSync(op: RecurrentWeightsState, device: Device): Tensor {
    const fresh = this.fresh(op, device);
    if (fresh) return fresh;
    const t = op.hostWeights.to(device);
    this.keep(t, op.weightsVersion);
    return t;
  }

  /** The weights on `device`, uploaded off the event loop when missing or stale. */
  async onDevice(op: RecurrentWeightsState, device: Device): Promise<Tensor> {
    const fresh = this.fresh(op, device);
    if (fresh) return fresh;
    const version = op.weightsVersion;
    const host = op.hostWeights.data.slice();
    const t = deviceTensor(device, op.hostWeights.shape);
    try {
      await upload(t.deviceBuffer, host);
    } catch (err) {
      t.dispose();
      throw err;
    }
    this.keep(t, version);
    return t;
  }

  /** Frees the device copy now. */
  dispose(): void {
    this.copy?.tensor.dispose();
    this.copy = null;
  }

  private fresh(op: RecurrentWeightsState, device: Device): Tensor | null {
    const c = this.copy;
    return c && c.version === op.weightsVersion && c.tensor.device === device && !c.tensor.disposed ? c.tensor : null;
  }

  // The previous copy is not disposed here: a run still in flight may be using it; the GC frees it.
  private keep(t: Tensor, version: number): void {
    this.copy = { tensor: t, version };
  }
}

/** x's device copy of an optional input (a new tensor, listed in `owned`, when it was elsewhere). */
function onDevice(t: Tensor | null, device: Device, owned: Tensor[]): Tensor | null {
  if (t === null || t.device === device) return t;
  const moved = t.to(device);
  owned.push(moved);
  return moved;
}

/** New device tensors for a sequence output of `shape` (y or dx) and the h and c states (c for LSTM), listed in `outs`. */
function deviceOutputs(op: RecurrentWeightsState, dev: Device, shape: readonly number[], B: number, outs: Tensor[]):
  [Tensor, Tensor, Tensor | null] {
  const states = stateShapes(op.config, B);
  const make = (s: readonly number[]): Tensor => {
    const t = deviceTensor(dev, s);
    outs.push(t);
    return t;
  };
  return [make(shape), make(states.h), op.config.mode === 'lstm' ? make(states.c) : null];
}

/** Runs a checked forward whose x is on the op's CUDA device, with the device weights `w`. */
export function cudaForward(op: RecurrentWeightsState, p: ForwardPlan, w: Tensor, async: boolean):
  CudaRun<RecurrentForwardResult> | Promise<CudaRun<RecurrentForwardResult>> {
  const c = op.config;
  const dev = p.x.device;
  checkDeviceAllocation('forward', deviceIndex(dev), forwardAllocations(c, p.T, p.B, p.training, op.hostWeights.size));
  const owned: Tensor[] = [];
  const outs: Tensor[] = [];
  let call: Promise<string> | string;
  let y: Tensor, hy: Tensor, cy: Tensor | null, activations: Tensor | null;
  let hx: Tensor | null, cx: Tensor | null;
  try {
    hx = onDevice(p.hx, dev, owned);
    cx = onDevice(p.cx, dev, owned);
    [y, hy, cy] = deviceOutputs(op, dev, p.yShape, p.B, outs);
    activations = p.training ? deviceTensor(dev, [native().recurrentSavedSize(c.native, p.T, p.B)]) : null;
    if (activations) owned.push(activations);
    call = native().cudaRecurrentForward({
      config: c.native, T: p.T, B: p.B, batchFirst: c.batchFirst, x: p.x.deviceBuffer, hx: buf(hx), cx: buf(cx),
      seqLengths: p.seqLengths, weights: w.deviceBuffer, dropout: p.dropout, seed: p.dropoutSeed,
      y: y.deviceBuffer, hy: hy.deviceBuffer, cy: buf(cy), saved: buf(activations), algorithm: c.algorithm, async,
    });
  } catch (err) {
    disposeAll([...outs, ...owned]);
    throw err;
  }
  const finish = (algorithm: string): CudaRun<RecurrentForwardResult> => {
    const cuda: CudaSaved | null = activations === null ? null
      : { y, hx, cx, seqLengths: p.seqLengths, activations, owned };
    const saved = cuda === null ? null : new RecurrentSaved(MAKE_SAVED, {
      owner: op, T: p.T, B: p.B, inputs: [p.x, p.hx, p.cx], weightsVersion: op.weightsVersion, dropout: p.dropout,
      dropoutSeed: p.dropoutSeed, xShape: p.x.shape, yShape: p.yShape, cpu: null, cuda,
    });
    if (saved === null) disposeAll(owned);
    const reason = native().cudaRecurrentAlgorithmReason(c.native, p.T, p.B, deviceIndex(dev), c.algorithm);
    return { result: { y, hy, cy, saved }, algorithm, reason };
  };
  if (!async) return finish(call as string);
  return (call as Promise<string>).then(finish, (err: unknown) => {
    disposeAll([...outs, ...owned]);
    throw err;
  });
}

/** Runs a checked backward of a CUDA saved, with the device weights `w`. */
export function cudaBackward(op: RecurrentWeightsState, p: BackwardPlan, w: Tensor, async: boolean):
  CudaRun<RecurrentGradients> | Promise<CudaRun<RecurrentGradients>> {
  const c = op.config;
  const s = p.saved;
  const g = s.cuda as CudaSaved;
  const x = s.inputs[0] as Tensor;
  const dev = x.device;
  g.y.assertLive('y of the forward');
  checkDeviceAllocation('backward', deviceIndex(dev), backwardAllocations(c, s.T, s.B, op.hostWeights.size));
  const temps: Tensor[] = [];
  const outs: Tensor[] = [];
  let call: Promise<string> | string;
  let dx: Tensor, dhx: Tensor, dcx: Tensor | null, dw: Tensor;
  try {
    const dy = onDevice(p.dy, dev, temps);
    const dhy = onDevice(p.dhy, dev, temps);
    const dcy = onDevice(p.dcy, dev, temps);
    [dx, dhx, dcx] = deviceOutputs(op, dev, s.xShape, s.B, outs);
    // The gradients are computed on the device, then land in the CPU dweights tensor.
    dw = p.accumulate ? p.dweights.to(dev) : deviceTensor(dev, p.dweights.shape);
    temps.push(dw);
    call = native().cudaRecurrentBackward({
      config: c.native, T: s.T, B: s.B, batchFirst: c.batchFirst, x: x.deviceBuffer, hx: buf(g.hx), cx: buf(g.cx),
      seqLengths: g.seqLengths, weights: w.deviceBuffer, dropout: s.dropout, seed: s.dropoutSeed,
      y: g.y.deviceBuffer, saved: g.activations.deviceBuffer, dy: buf(dy), dhy: buf(dhy), dcy: buf(dcy),
      dx: dx.deviceBuffer, dhx: dhx.deviceBuffer, dcx: buf(dcx), dweights: dw.deviceBuffer,
      accumulate: p.accumulate, async,
    });
  } catch (err) {
    disposeAll([...outs, ...temps]);
    throw err;
  }
  const run = (algorithm: string): CudaRun<RecurrentGradients> => {
    disposeAll(temps);
    return { result: { dx, dhx, dcx, dweights: p.dweights }, algorithm, reason: BACKWARD_REASON };
  };
  const cleanupOnError = (err: unknown): never => {
    disposeAll([...outs, ...temps]);
    throw err;
  };
  if (!async) {
    try {
      downloadSync(dw.deviceBuffer, p.dweights.data);
    } catch (err) {
      cleanupOnError(err);
    }
    return run(call as string);
  }
  return (call as Promise<string>).then(async (algorithm) => {
    await download(dw.deviceBuffer, p.dweights.data);
    return run(algorithm);
  }).catch(cleanupOnError);
}
