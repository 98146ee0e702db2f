/**
 * The arguments of the Recurrent op (lib/recurrent.ts), checked through lib/args.ts: the
 * constructor's options become a `RecurrentConfig`; the options of a forward or a backward become
 * a plan that the CPU dispatch (recurrent-cpu.ts) and the CUDA dispatch (recurrent-cuda.ts) run
 * as it is. Every check happens here, before anything is allocated or any native call is made.
 */
import { randomInt } from 'crypto';
import { RnnkitError } from './errors';
import { Device, DeviceSpec, resolveDevice } from './device';
import { NativeRecurrentConfig, native } from './native';
import { Tensor, checkTensor } from './tensor';
import { checkInputsFinite } from './check';
import {
  Allocation, allocFloats, argError, isInstance, readBoolean, readChoice, readInteger, readNumber, readOptions, readRequiredOptions,
  readSeed, readSeqLengths, readTensorOrNull, shapeError, sizeProduct,
} from './args';
import {
  MAX_FEATURE_SIZE, MAX_LAYERS, RECURRENT_MODES, RECURRENT_OPTION_KEYS, RecurrentLayoutConfig, RecurrentMode,
} from './recurrent-params';
import { RecurrentSaved } from './recurrent-saved';

/** The CUDA algorithm of a forward: chosen by shape ('auto'), or forced. The backward is always 'standard'. */
export type RecurrentAlgorithm = 'auto' | 'standard' | 'persistent';
const ALGORITHMS: readonly RecurrentAlgorithm[] = ['auto', 'standard', 'persistent'];

/** Options of `new Recurrent`. */
export interface RecurrentOptions {
  /** The cell: 'lstm', 'gru', 'rnn_tanh' or 'rnn_relu'. */
  mode: RecurrentMode;
  /** I, features of x (an integer from 1 to 2^24). */
  inputSize: number;
  /** H, features of the hidden state (an integer from 1 to 2^24). */
  hiddenSize: number;
  /** L, stacked layers (1 to 1024, default 1). */
  numLayers?: number;
  /** Run a reverse direction too and concatenate both in y (default false). */
  bidirectional?: boolean;
  /** Dropout probability on the outputs of every layer but the last, in [0, 1). */
  dropout?: number;
  /** 'linear' (default), or 'skip': layer 0 adds x itself instead of W_ih·x (needs inputSize == hiddenSize). */
  inputMode?: 'linear' | 'skip';
  /** x and y are [B, T, F] instead of [T, B, F] (default false; hx, cx, hy, cy are [L·D, B, F] either way). */
  batchFirst?: boolean;
  /** LSTM only: size of the projected hidden state (0: none). */
  projSize?: number;
  /** LSTM only: clip the cell state to [-cellClip, cellClip] (0: none). */
  cellClip?: number;
  /** LSTM only: peephole connections from the cell state to the i, f, o gates (default false). */
  peepholes?: boolean;
  /** GRU only: true (default) is the cuDNN / PyTorch form, false the ONNX default. */
  linearBeforeReset?: boolean;
  /** Where the op runs: 'cpu', 'cuda', 'cuda:N' or 'auto' (default: CUDA device 0 when available, else the CPU). */
  device?: DeviceSpec;
  /** Seeds the weights and the dropout masks; a random one when absent. */
  seed?: number;
  /**
   * CUDA forward algorithm (default 'auto': chosen by shape). 'persistent' where it cannot run
   * throws ERR_RNNKIT_ARG with the reason; CPU runs ignore it.
   */
  algorithm?: RecurrentAlgorithm;
}

/** Options of `Recurrent.forward`. */
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

/** What `Recurrent.forward` returns. */
export interface RecurrentForwardResult {
  /** The last layer's outputs [T, B, D·R] ([B, T, D·R] with batchFirst); zero at steps past a sequence's length. */
  y: Tensor;
  /** The final hidden state of every layer and direction [L·D, B, R]. */
  hy: Tensor;
  /** The final cell state [L·D, B, H]; null unless mode is lstm. */
  cy: Tensor | null;
  /** What `backward` needs; null unless training. */
  saved: RecurrentSaved | null;
}

/** Options of `Recurrent.backward`. */
export interface RecurrentBackwardOptions {
  /** The gradient of y, y's shape (zeros when absent). */
  dy?: Tensor | null;
  /** The gradient of hy [L·D, B, R] (zeros when absent). */
  dhy?: Tensor | null;
  /** The gradient of cy [L·D, B, H], LSTM only (zeros when absent). */
  dcy?: Tensor | null;
  /** Add the weight gradients into `dweights` instead of overwriting it. */
  accumulate?: boolean;
  /**
   * A tensor of the weights' size to write (or add) the weight gradients into: a CPU tensor, or for
   * a CUDA run one on the op's device (written there with no host copy).
   */
  dweights?: Tensor | null;
}

/** What `Recurrent.backward` returns. */
export interface RecurrentGradients {
  /** The gradient of x, x's shape (a new tensor). */
  dx: Tensor;
  /** The gradient of hx [L·D, B, R] (a new tensor). */
  dhx: Tensor;
  /** The gradient of cx [L·D, B, H]; null unless mode is lstm. */
  dcx: Tensor | null;
  /** The weight gradients, laid out like `weights`: a new CPU tensor, or the given `dweights` (overwritten or added into, on its device). */
  dweights: Tensor;
}

/** The options of an op once checked, defaults filled in: the public fields of `Recurrent`. */
export interface RecurrentSettings {
  /** The cell. */
  readonly mode: RecurrentMode;
  /** I, features of x. */
  readonly inputSize: number;
  /** H, features of the hidden state. */
  readonly hiddenSize: number;
  /** L, stacked layers. */
  readonly numLayers: number;
  /** Whether each layer runs a reverse direction too (D = 2). */
  readonly bidirectional: boolean;
  /** Dropout probability on the outputs of every layer but the last (0: none). */
  readonly dropout: number;
  /** 'linear', or 'skip' (layer 0 adds x itself instead of W_ih·x). */
  readonly inputMode: 'linear' | 'skip';
  /** Whether x and y are [B, T, F]. */
  readonly batchFirst: boolean;
  /** LSTM: size R of the projected hidden state (0: none, R = H). */
  readonly projSize: number;
  /** LSTM: the cell state is clipped to [−cellClip, cellClip] (0: no clipping). */
  readonly cellClip: number;
  /** LSTM: whether peephole connections are on. */
  readonly peepholes: boolean;
  /** GRU: true is the cuDNN / PyTorch form, false the ONNX default. */
  readonly linearBeforeReset: boolean;
  /** The device the op was created for ('auto' and 'cuda' resolved). */
  readonly device: Device;
  /** The seed of the initial weights and of the dropout masks (the given one, or the one drawn). */
  readonly seed: number;
  /** The CUDA forward algorithm asked for ('auto': chosen by shape). */
  readonly algorithm: RecurrentAlgorithm;
}

/** The checked configuration of an op, with the sizes derived from it. */
export interface RecurrentConfig extends RecurrentSettings {
  /** D: 2 when bidirectional. */
  readonly numDirections: number;
  /** R, the size of h: projSize when set, else hiddenSize. */
  readonly stateSize: number;
  /** L·D, the leading size of hx, hy, cx and cy. */
  readonly layerStates: number;
  /** What the packed-weight layout depends on (recurrent-params.ts). */
  readonly layout: RecurrentLayoutConfig;
  /** What the binding reads. */
  readonly native: NativeRecurrentConfig;
}

/** The options of `new Recurrent`, checked; throws ERR_RNNKIT_ARG (or _DEVICE) naming the bad one. */
export function readRecurrentConfig(options: unknown): RecurrentConfig {
  const o = readRequiredOptions(options, RECURRENT_OPTION_KEYS, 'Recurrent options',
    'Recurrent needs options { mode, inputSize, hiddenSize }');
  const mode = readChoice(o.mode, 'mode', RECURRENT_MODES);
  const inputSize = readInteger(o.inputSize, 'inputSize', 1, MAX_FEATURE_SIZE);
  const hiddenSize = readInteger(o.hiddenSize, 'hiddenSize', 1, MAX_FEATURE_SIZE);
  const numLayers = readInteger(o.numLayers, 'numLayers', 1, MAX_LAYERS, 1);
  const bidirectional = readBoolean(o.bidirectional, 'bidirectional', false);
  const inputMode = readChoice(o.inputMode, 'inputMode', ['linear', 'skip'], 'linear');
  const batchFirst = readBoolean(o.batchFirst, 'batchFirst', false);
  const projSize = readInteger(o.projSize, 'projSize', 0, MAX_FEATURE_SIZE, 0);
  const peepholes = readBoolean(o.peepholes, 'peepholes', false);
  const linearBeforeReset = readBoolean(o.linearBeforeReset, 'linearBeforeReset', true);
  const dropout = readNumber(o.dropout, 'dropout', { min: 0, below: 1 }, 0);
  // Just below 1 rounds to 1 in float32, where the kernels' 1/(1 − p) scale is infinite.
  if (Math.fround(dropout) >= 1) throw argError(`dropout ${dropout} is too close to 1`);
  const cellClip = readNumber(o.cellClip, 'cellClip', { min: 0 }, 0);
  if (cellClip > 0 && mode !== 'lstm') throw argError('cellClip applies to mode lstm only');
  const algorithm = readChoice(o.algorithm, 'algorithm', ALGORITHMS, 'auto');
  const device = resolveDevice(o.device as DeviceSpec | undefined);
  const seed = o.seed === undefined ? randomInt(0, 2 ** 47) : readSeed(o.seed, 'seed');
  const numDirections = bidirectional ? 2 : 1;
  return {
    mode, inputSize, hiddenSize, numLayers, bidirectional, dropout, inputMode, batchFirst, projSize, cellClip,
    peepholes, linearBeforeReset, device, seed, algorithm, numDirections,
    stateSize: projSize > 0 ? projSize : hiddenSize,
    layerStates: numLayers * numDirections,
    layout: { mode, inputSize, hiddenSize, numLayers, bidirectional, inputMode, projSize, peepholes, linearBeforeReset },
    native: {
      mode, inputSize, hiddenSize, numLayers, bidirectional, skipInput: inputMode === 'skip', projSize, cellClip,
      peepholes, linearBeforeReset,
    },
  };
}

/** The settings part of a configuration (one value per option of `new Recurrent`). */
export function settingsOf(c: RecurrentConfig): RecurrentSettings {
  const out: Partial<Record<keyof RecurrentSettings, unknown>> = {};
  for (const k of RECURRENT_OPTION_KEYS) out[k] = c[k];
  return out as RecurrentSettings;
}

/** What a run reads of its op (which it also names as the owner of a saved): configuration, weights, their version. */
export interface RecurrentWeightsState {
  readonly config: RecurrentConfig;
  /** The packed weights on the host (a CPU tensor; on a CUDA op, current before every host read or CPU run). */
  readonly hostWeights: Tensor;
  /** Bumped by every change of the weights. */
  readonly weightsVersion: number;
}

/** A checked forward: sizes, inputs (on x's device or not), and what the call applies. */
export interface ForwardPlan {
  T: number;
  B: number;
  x: Tensor;
  hx: Tensor | null;
  cx: Tensor | null;
  /** A copy made at the check: later writes by the caller cannot reach the kernels. */
  seqLengths: Int32Array | null;
  training: boolean;
  /** The dropout probability this call applies (0 when off). */
  dropout: number;
  dropoutSeed: number;
  yShape: number[];
}

/** A checked backward: its saved, the output gradients and where the weight gradients go. */
export interface BackwardPlan {
  saved: RecurrentSaved;
  dy: Tensor | null;
  dhy: Tensor | null;
  dcy: Tensor | null;
  accumulate: boolean;
  dweights: Tensor;
}

const FORWARD_KEYS = ['hx', 'cx', 'seqLengths', 'training', 'dropout', 'dropoutSeed'] as const;
const BACKWARD_KEYS = ['dy', 'dhy', 'dcy', 'accumulate', 'dweights'] as const;

/** The shapes of hy (and hx) and cy (and cx) for batch B. */
export function stateShapes(c: RecurrentConfig, B: number): { h: number[]; c: number[] } {
  return { h: [c.layerStates, B, c.stateSize], c: [c.layerStates, B, c.hiddenSize] };
}

/**
 * The working memory of the kernels for a run of T steps and batch B, bounded from above: the
 * Buf allocations of native/kernels/recurrent*.cc (a gate buffer of at most 4H per row, the
 * previous states, projection and layer-output buffers) and the packed copies of the weights.
 */
function workingFloats(c: RecurrentConfig, T: number, B: number, weights: number): number {
  const H = c.hiddenSize;
  const R = c.stateSize;
  const DR = c.numDirections * R;
  const perRow = sizeProduct([T, B, 6 * H + 2 * R + 3 * DR], 'the working memory of T·B rows');
  return perRow + sizeProduct([B, 8 * H + 6 * R], 'the per-batch state buffers') + 16 * H + weights;
}

/** What a forward of T steps and batch B allocates (on the host or x's CUDA device), for the limit checks. */
export function forwardAllocations(c: RecurrentConfig, T: number, B: number, training: boolean, weights: number): Allocation[] {
  const states = stateShapes(c, B);
  const parts: Allocation[] = [
    { what: `y [${T}, ${B}, ${c.numDirections * c.stateSize}]`, floats: sizeProduct([T, B, c.numDirections, c.stateSize], 'y') },
    { what: 'hy', floats: sizeProduct(states.h, 'hy') },
    { what: 'the working memory of the kernels', floats: workingFloats(c, T, B, weights), native: true },
  ];
  if (c.mode === 'lstm') parts.push({ what: 'cy', floats: sizeProduct(states.c, 'cy') });
  if (training) parts.push({ what: `the saved activations (T ${T}, B ${B})`, floats: native().recurrentSavedSize(c.native, T, B) });
  return parts;
}

/** What a backward of T steps and batch B allocates, for the limit checks. */
export function backwardAllocations(c: RecurrentConfig, T: number, B: number, weights: number): Allocation[] {
  const states = stateShapes(c, B);
  const parts: Allocation[] = [
    { what: `dx [${T}, ${B}, ${c.inputSize}]`, floats: sizeProduct([T, B, c.inputSize], 'dx') },
    { what: 'dhx', floats: sizeProduct(states.h, 'dhx') },
    { what: 'the working memory of the kernels', floats: workingFloats(c, T, B, weights), native: true },
  ];
  if (c.mode === 'lstm') parts.push({ what: 'dcx', floats: sizeProduct(states.c, 'dcx') });
  return parts;
}

/** Checks a forward's arguments; `nextDropoutSeed` draws the seed when dropout is on and none is given. */
export function planForward(c: RecurrentConfig, x: unknown, options: unknown, weights: Tensor,
  nextDropoutSeed: () => number): ForwardPlan {
  const o = readOptions(options, FORWARD_KEYS, 'forward options');
  checkTensor(x, 'x', 3);
  const input = x as Tensor;
  weights.assertLive('weights');
  const T = c.batchFirst ? input.shape[1] : input.shape[0];
  const B = c.batchFirst ? input.shape[0] : input.shape[1];
  if (input.shape[2] !== c.inputSize) {
    throw shapeError(`x must be [${c.batchFirst ? 'B, T' : 'T, B'}, ${c.inputSize}], got [${input.shape.join(', ')}]`);
  }
  const states = stateShapes(c, B);
  const hx = readTensorOrNull(o.hx, 'hx', states.h);
  if (c.mode !== 'lstm' && o.cx !== undefined && o.cx !== null) throw argError('cx applies to mode lstm only');
  const cx = readTensorOrNull(o.cx, 'cx', states.c);
  const seqLengths = readSeqLengths(o.seqLengths, T, B);
  checkInputsFinite({ x: input, hx, cx, weights });
  const training = readBoolean(o.training, 'training', false);
  const dropoutOn = readBoolean(o.dropout, 'dropout', training);
  const dropout = dropoutOn && c.numLayers > 1 ? c.dropout : 0;
  let dropoutSeed = 0;
  if (o.dropoutSeed !== undefined) dropoutSeed = readSeed(o.dropoutSeed, 'dropoutSeed');
  else if (dropout > 0) dropoutSeed = nextDropoutSeed();
  const DR = c.numDirections * c.stateSize;
  const yShape = c.batchFirst ? [B, T, DR] : [T, B, DR];
  return { T, B, x: input, hx, cx, seqLengths, training, dropout, dropoutSeed, yShape };
}

/** Checks a backward's arguments against the op `owner` and its current weights. */
export function planBackward(c: RecurrentConfig, owner: object, saved: unknown, options: unknown, weights: Tensor,
  weightsVersion: number): BackwardPlan {
  const o = readOptions(options, BACKWARD_KEYS, 'backward options');
  if (!isInstance(saved, RecurrentSaved)) {
    throw argError('backward needs the saved of a training forward: forward(x, { training: true }).saved');
  }
  if (saved.owner !== owner) throw argError('this saved comes from another Recurrent op');
  if (saved.released) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'this saved has been released');
  const names = ['x', 'hx', 'cx'];
  saved.inputs.forEach((t, k) => t?.assertLive(`${names[k]} of the forward`));
  weights.assertLive('weights');
  if (saved.weightsVersion !== weightsVersion) {
    throw argError('the weights changed (setParam, importWeights, an optimizer step on the device, a write through weights.data) since the forward that made this saved');
  }
  const states = stateShapes(c, saved.B);
  const dy = readTensorOrNull(o.dy, 'dy', saved.yShape);
  const dhy = readTensorOrNull(o.dhy, 'dhy', states.h);
  if (c.mode !== 'lstm' && o.dcy !== undefined && o.dcy !== null) throw argError('dcy applies to mode lstm only');
  const dcy = readTensorOrNull(o.dcy, 'dcy', states.c);
  checkInputsFinite({ dy, dhy, dcy });
  const accumulate = readBoolean(o.accumulate, 'accumulate', false);
  let dweights = readTensorOrNull(o.dweights, 'dweights');
  if (dweights !== null) {
    if (dweights.size !== weights.size) {
      throw shapeError(`dweights must hold ${weights.size} values, got [${dweights.shape.join(', ')}]`);
    }
    if (dweights.device !== 'cpu' && !(saved.cuda && dweights.device === saved.inputDevice)) {
      throw new RnnkitError('ERR_RNNKIT_DEVICE', `dweights must be a CPU tensor${saved.cuda ? ` or on ${saved.inputDevice}, where the saved is` : ''}, got one on ${dweights.device}`);
    }
  } else if (accumulate) {
    throw argError('accumulate needs a dweights tensor to add into');
  } else {
    dweights = Tensor.fromCpu(allocFloats(weights.size, 'dweights', 'backward'), weights.shape);
  }
  return { saved, dy, dhy, dcy, accumulate, dweights };
}
