/**
 * The CUDA dispatch of the Recurrent op (native/napi/cuda_recurrent_ops.cc over
 * cuda/recurrent.cu) and its device-weight cache. A run takes a checked plan whose x is on the
 * op's CUDA device: inputs on another device are copied over (and owned by the saved or freed
 * after the call), outputs and the saved stay on the device, and the weight gradients land in the
 * given dweights tensor: on the device with no copy, or a CPU one (downloaded into). The op's
 * device weights are kept by `DeviceWeights`. Each run returns the algorithm that ran, for `lastRun`.
 */
import { Device, deviceIndex } from './device';
import { checkDeviceAllocation } from './args';
import { RnnkitError } from './errors';
import { DeviceBuffer, download, downloadSync, native, upload, uploadSync } from './native';
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
 * The packed weights of a CUDA op on its device, in step with the host copy (`hostWeights`) and
 * never silently stale. The device tensor is the op's own, allocated on first use and updated in
 * place (the parameters of nn.LSTM / GRU / RNN on CUDA are views of it, written by the optimizers):
 * - a device write (the tensor's version moved since the two last matched) makes the host copy
 *   stale: `toHostSync` downloads it before any host read (getParam, exportWeights, `weights`, a
 *   CPU run of the op);
 * - a host write (setParam, importWeights: `hostWritten`) is uploaded at once when the device
 *   tensor exists, else on first use;
 * - writes through `weights.data` are found by comparing with the snapshot taken when `weights`
 *   was read (`handOut`), at the next sync, and uploaded then; the snapshot is dropped after that
 *   sync (read `weights` again to write again). When the device was written too, that sync throws
 *   ERR_RNNKIT_ARG (once: the device values are kept) instead of dropping a write silently.
 * CUDA runs in flight are tracked: an upload waits for them (async) or refuses (sync), as it
 * writes the memory they read.
 */
export class DeviceWeights {
  private tensor: Tensor | null = null;
  /** The device tensor's version when it last held the host copy's values. */
  private syncedVersion = 0;
  /** The device tensor's version when `edits` last looked. */
  private seenVersion = 0;
  /** The host copy holds values the device lacks (before the first upload, after a host write). */
  private hostAhead = true;
  private snapshot: Float32Array | null = null;
  private editCount = 0;
  private readonly pending = new Set<Promise<void>>();

  constructor(private readonly device: Device) {}

  /** Changes of the weights made on the device or through `weights.data` seen so far (for the op's weightsVersion). */
  edits(): number {
    const t = this.tensor;
    if (t && t.version !== this.seenVersion) {
      this.editCount++;
      this.seenVersion = t.version;
    }
    return this.editCount;
  }

  /** The tensor that holds the newest values (for the finite check): the device one after a device write. */
  newest(host: Tensor): Tensor {
    const t = this.tensor;
    return t && !t.disposed && t.version !== this.syncedVersion ? t : host;
  }

  /** `host` is handed to a caller who may write through `data`: the snapshot to compare with. */
  handOut(host: Tensor): void {
    this.toHostSync(host);
    this.snapshot = host.data.slice();
  }

  /** Makes the host copy current (a counted download after a device write). */
  toHostSync(host: Tensor): void {
    const deviceAhead = this.reconcile(host);
    const t = this.tensor;
    if (!deviceAhead || !t) return;
    downloadSync(t.deviceBuffer, host.data);
    host.bumpVersion();
    this.syncedVersion = t.version;
    if (this.snapshot) this.snapshot = host.data.slice();
  }

  /** The host copy was written (setParam, importWeights, after `toHostSync`): uploaded now when the device tensor exists. */
  hostWritten(host: Tensor): void {
    this.snapshot = null;
    this.hostAhead = true;
    if (this.tensor) this.toDeviceSync(host);
  }

  /** The weights on the device, uploaded on the calling thread when the host copy is ahead. */
  toDeviceSync(host: Tensor): Tensor {
    this.reconcile(host);
    const t = this.allocated(host);
    if (!this.hostAhead) return t;
    if (this.pending.size > 0) {
      throw new RnnkitError('ERR_RNNKIT_ARG',
        'the weights changed on the host while a CUDA run of this op is in flight (the new values are uploaded by the next run): ' +
        'await the run before a write or a run on the calling thread');
    }
    uploadSync(t.deviceBuffer, host.data);
    this.uploaded(t);
    return t;
  }

  /** The weights on the device, uploaded off the event loop (after the runs in flight) when the host copy is ahead. */
  async toDevice(host: Tensor): Promise<Tensor> {
    this.reconcile(host);
    const t = this.allocated(host);
    if (!this.hostAhead) return t;
    await Promise.allSettled([...this.pending]);
    if (!this.hostAhead) return t;
    const values = host.data.slice();
    await this.track(upload(t.deviceBuffer, values));
    this.uploaded(t);
    return t;
  }

  /**
   * Tracks a CUDA job on the device weights until it settles; returns it. It leaves the set in its
   * own settle reaction, registered before the caller's await, so a caller that awaited it never
   * sees it pending.
   */
  track<T>(run: Promise<T>): Promise<T> {
    let done: () => void = () => undefined;
    const settled = new Promise<void>((resolve) => { done = resolve; });
    this.pending.add(settled);
    const finish = (): void => {
      this.pending.delete(settled);
      done();
    };
    run.then(finish, finish);
    return run;
  }

  /** Frees the device tensor now (views of it, the parameters of an nn module, go with it). */
  dispose(): void {
    this.tensor?.dispose();
    this.tensor = null;
  }

  private allocated(host: Tensor): Tensor {
    if (this.tensor && this.tensor.disposed) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'the device weights have been disposed');
    if (!this.tensor) {
      this.tensor = deviceTensor(this.device, host.shape);
      this.syncedVersion = this.seenVersion = this.tensor.version;
      this.hostAhead = true;
    }
    return this.tensor;
  }

  private uploaded(t: Tensor): void {
    t.bumpVersion();
    this.syncedVersion = this.seenVersion = t.version;
    this.hostAhead = false;
    this.snapshot = null;
  }

  /**
   * Folds writes through `weights.data` into hostAhead (and the edit count); returns whether the
   * device holds values the host lacks. Throws when both sides were written.
   */
  private reconcile(host: Tensor): boolean {
    const t = this.tensor;
    const deviceAhead = t !== null && !t.disposed && t.version !== this.syncedVersion;
    const s = this.snapshot;
    const written = s !== null && !sameValues(s, host.data);
    if (deviceAhead && (written || this.hostAhead)) {
      // Reported once; the device values are kept, so the next call goes on from them.
      this.snapshot = null;
      this.hostAhead = false;
      throw new RnnkitError('ERR_RNNKIT_ARG', 'the weights were written on the host (through weights.data) and on the device ' +
        '(an optimizer step on the parameters) since they last matched: the host writes are dropped, the device values kept; ' +
        'read `weights` again before writing through it');
    }
    if (written) {
      this.snapshot = null;
      this.hostAhead = true;
      this.editCount++;
    }
    return deviceAhead;
  }
}

/** Whether two arrays hold the same bits (NaN payloads included). */
function sameValues(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  const x = new Int32Array(a.buffer, a.byteOffset, a.length);
  const y = new Int32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
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
    // The gradients are computed on the device: into dweights itself when it is there, else into a
    // device copy downloaded into the CPU dweights afterwards.
    if (p.dweights.device === dev) {
      dw = p.dweights;
    } else {
      dw = p.accumulate ? p.dweights.to(dev) : deviceTensor(dev, p.dweights.shape);
      temps.push(dw);
    }
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
  const onHost = p.dweights.device !== dev;
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
      if (onHost) downloadSync(dw.deviceBuffer, p.dweights.data);
    } catch (err) {
      cleanupOnError(err);
    }
    return run(call as string);
  }
  return (call as Promise<string>).then(async (algorithm) => {
    if (onHost) await download(dw.deviceBuffer, p.dweights.data);
    return run(algorithm);
  }).catch(cleanupOnError);
}
