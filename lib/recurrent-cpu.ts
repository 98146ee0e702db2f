/**
 * The CPU dispatch of the Recurrent op: host arrays for the inputs (CUDA inputs are read back),
 * output arrays sized from the plan, the native call (native/napi/recurrent_ops.cc), and the
 * results as tensors on the device of x. The plans come checked from recurrent-config.ts.
 */
import { native } from './native';
import { Tensor } from './tensor';
import { allocFloats, checkHostAllocation } from './args';
import {
  BackwardPlan, ForwardPlan, RecurrentConfig, RecurrentForwardResult, RecurrentGradients, RecurrentWeightsState,
  backwardAllocations, forwardAllocations, stateShapes,
} from './recurrent-config';
import { CpuSaved, MAKE_SAVED, RecurrentSaved, useActivations } from './recurrent-saved';
import { savedPool } from './host-cache';

type F32 = Float32Array | null;

const hostSync = (t: Tensor | null): F32 => (t === null ? null : t.device === 'cpu' ? t.data : t.readSync());
const hostAsync = async (t: Tensor | null): Promise<F32> => (t === null ? null : t.device === 'cpu' ? t.data : t.read());

interface ForwardArrays {
  x: Float32Array;
  hx: F32;
  cx: F32;
  y: Float32Array;
  hy: Float32Array;
  cy: F32;
  saved: F32;
}

/** Refuses a forward whose arrays would not fit on the host, before the inputs are read back. */
function checkForward(op: RecurrentWeightsState, p: ForwardPlan): void {
  checkHostAllocation('forward', forwardAllocations(op.config, p.T, p.B, p.training, op.hostWeights.size));
}

function forwardArrays(c: RecurrentConfig, p: ForwardPlan, x: Float32Array, hx: F32, cx: F32): ForwardArrays {
  const states = stateShapes(c, p.B);
  return {
    x, hx, cx,
    y: allocFloats(p.T * p.B * c.numDirections * c.stateSize, 'y', 'forward'),
    hy: allocFloats(states.h[0] * states.h[1] * states.h[2], 'hy', 'forward'),
    cy: c.mode === 'lstm' ? allocFloats(states.c[0] * states.c[1] * states.c[2], 'cy', 'forward') : null,
    saved: p.training ? savedArray(native().recurrentSavedSize(c.native, p.T, p.B)) : null,
  };
}

/** The saved activations of a training forward: a released saved's array when one fits (host-cache.ts). */
function savedArray(n: number): Float32Array {
  const a = savedPool.take(n);
  if (a) return a;
  const fresh = allocFloats(n, 'the saved activations', 'forward');
  if (savedPool.poison) fresh.fill(NaN);
  return fresh;
}

function callForward(op: RecurrentWeightsState, p: ForwardPlan, a: ForwardArrays, async: boolean): Promise<void> | undefined {
  return native().recurrentForward({
    config: op.config.native, T: p.T, B: p.B, batchFirst: op.config.batchFirst, x: a.x, hx: a.hx, cx: a.cx,
    seqLengths: p.seqLengths, weights: op.hostWeights.data, dropout: p.dropout, seed: p.dropoutSeed,
    y: a.y, hy: a.hy, cy: a.cy, saved: a.saved, async,
  });
}

/** A host result as a tensor on `device`. */
function place(a: Float32Array, shape: readonly number[], device: Tensor['device']): Tensor {
  const t = Tensor.fromCpu(a, shape);
  return device === 'cpu' ? t : t.to(device);
}

function forwardResult(op: RecurrentWeightsState, p: ForwardPlan, a: ForwardArrays): RecurrentForwardResult {
  const dev = p.x.device;
  const states = stateShapes(op.config, p.B);
  const cpu: CpuSaved | null = a.saved === null ? null
    : { x: a.x, hx: a.hx, cx: a.cx, seqLengths: p.seqLengths, y: a.y, activations: a.saved };
  const saved = cpu === null ? null : new RecurrentSaved(MAKE_SAVED, {
    owner: op, T: p.T, B: p.B, inputs: [p.x, p.hx, p.cx], weightsVersion: op.weightsVersion, dropout: p.dropout,
    dropoutSeed: p.dropoutSeed, xShape: p.x.shape, yShape: p.yShape, cpu, cuda: null,
  });
  return {
    y: place(a.y, p.yShape, dev),
    hy: place(a.hy, states.h, dev),
    cy: a.cy === null ? null : place(a.cy, states.c, dev),
    saved,
  };
}

/** Runs a checked forward on the CPU off the event loop. */
export async function cpuForward(op: RecurrentWeightsState, p: ForwardPlan): Promise<RecurrentForwardResult> {
  checkForward(op, p);
  const [hx, x, cx] = await Promise.all([hostAsync(p.hx), hostAsync(p.x), hostAsync(p.cx)]);
  const a = forwardArrays(op.config, p, x as Float32Array, hx, cx);
  await callForward(op, p, a, true);
  return forwardResult(op, p, a);
}

/** Runs a checked forward on the CPU on the calling thread. */
export function cpuForwardSync(op: RecurrentWeightsState, p: ForwardPlan): RecurrentForwardResult {
  checkForward(op, p);
  const a = forwardArrays(op.config, p, hostSync(p.x) as Float32Array, hostSync(p.hx), hostSync(p.cx));
  callForward(op, p, a, false);
  return forwardResult(op, p, a);
}

interface BackwardArrays {
  dy: F32;
  dhy: F32;
  dcy: F32;
  dx: Float32Array;
  dhx: Float32Array;
  dcx: F32;
}

function checkBackward(op: RecurrentWeightsState, p: BackwardPlan): void {
  checkHostAllocation('backward', backwardAllocations(op.config, p.saved.T, p.saved.B, op.hostWeights.size));
}

function backwardArrays(c: RecurrentConfig, p: BackwardPlan, dy: F32, dhy: F32, dcy: F32): BackwardArrays {
  const states = stateShapes(c, p.saved.B);
  return {
    dy, dhy, dcy,
    dx: allocFloats(p.saved.T * p.saved.B * c.inputSize, 'dx', 'backward'),
    dhx: allocFloats(states.h[0] * states.h[1] * states.h[2], 'dhx', 'backward'),
    dcx: c.mode === 'lstm' ? allocFloats(states.c[0] * states.c[1] * states.c[2], 'dcx', 'backward') : null,
  };
}

function callBackward(op: RecurrentWeightsState, p: BackwardPlan, d: CpuSaved, a: BackwardArrays, async: boolean): Promise<void> | undefined {
  const s = p.saved;
  return native().recurrentBackward({
    config: op.config.native, T: s.T, B: s.B, batchFirst: op.config.batchFirst, x: d.x, hx: d.hx, cx: d.cx,
    seqLengths: d.seqLengths, weights: op.hostWeights.data, dropout: s.dropout, seed: s.dropoutSeed,
    y: d.y, saved: d.activations, dy: a.dy, dhy: a.dhy, dcy: a.dcy, dx: a.dx, dhx: a.dhx, dcx: a.dcx,
    dweights: p.dweights.data, accumulate: p.accumulate, async,
  });
}

function backwardResult(c: RecurrentConfig, p: BackwardPlan, a: BackwardArrays): RecurrentGradients {
  const dev = p.saved.inputDevice;
  const states = stateShapes(c, p.saved.B);
  return {
    dx: place(a.dx, p.saved.xShape, dev),
    dhx: place(a.dhx, states.h, dev),
    dcx: a.dcx === null ? null : place(a.dcx, states.c, dev),
    dweights: p.dweights,
  };
}

/** Runs a checked backward of a CPU saved off the event loop. */
export async function cpuBackward(op: RecurrentWeightsState, p: BackwardPlan): Promise<RecurrentGradients> {
  checkBackward(op, p);
  // In use until the kernel returns: a release() meanwhile recycles the activations only then.
  // The arrays are taken now: a release() while the gradients are read back must not drop them.
  const d = p.saved.cpu as CpuSaved;
  useActivations(p.saved, 1);
  try {
    const [dy, dhy, dcy] = await Promise.all([hostAsync(p.dy), hostAsync(p.dhy), hostAsync(p.dcy)]);
    const a = backwardArrays(op.config, p, dy, dhy, dcy);
    await callBackward(op, p, d, a, true);
    return backwardResult(op.config, p, a);
  } finally {
    useActivations(p.saved, -1);
  }
}

/** Runs a checked backward of a CPU saved on the calling thread. */
export function cpuBackwardSync(op: RecurrentWeightsState, p: BackwardPlan): RecurrentGradients {
  checkBackward(op, p);
  const a = backwardArrays(op.config, p, hostSync(p.dy), hostSync(p.dhy), hostSync(p.dcy));
  callBackward(op, p, p.saved.cpu as CpuSaved, a, false);
  return backwardResult(op.config, p, a);
}
