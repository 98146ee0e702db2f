// Packed-weight layout of the Recurrent op (docs/recurrent-semantics.md), PyTorch-style
// initialization, and conversion to and from the weight records of PyTorch, ONNX and Keras.
// Pure TypeScript over Float32Array: no native code, so it runs (and is tested) anywhere.
//
// Record naming (every value is flat, row-major in its source's layout):
// - 'pytorch': the state_dict of nn.LSTM / nn.GRU / nn.RNN: weight_ih_l{k}, weight_hh_l{k},
//   bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k} (projection); suffix _reverse for direction 1.
//   Gate orders equal ours. PyTorch has no skip input, no peepholes and only the
//   linear-before-reset GRU, so those configurations throw ERR_RNNKIT_ARG.
// - 'onnx': the inputs of one ONNX LSTM / GRU / RNN node per layer: W [D, G·H, I],
//   R [D, G·H, H], B [D, 2·G·H] (W biases then R biases), P [D, 3·H] (peepholes only), direction 0
//   forward and 1 reverse, gate orders LSTM i o f c, GRU z r h, peepholes i o f. With one layer the
//   names are W, R, B, P; with several every layer is suffixed: W_l0, R_l0, …, W_l1, …. The GRU
//   node must carry linear_before_reset = 1 when linearBeforeReset is true (ONNX's default 0 is
//   our false); a layer l > 0 reads the previous node's Y [T, D, B, H] transposed to
//   [T, B, D·H]. ONNX has no skip input and no projection: those throw ERR_RNNKIT_ARG.
// - 'keras': per layer and direction, prefix layer{l}_fw/ or layer{l}_bw/ then kernel [I, G·H],
//   recurrent_kernel [H, G·H] and bias; gate orders LSTM i f c o, GRU z r h. bias is [G·H] =
//   b_ih + b_hh for LSTM, SimpleRNN and the GRU with reset_after=False (linearBeforeReset false);
//   import puts it in b_ih and zeroes b_hh. The GRU with reset_after=True (linearBeforeReset true)
//   keeps both: bias [2, G·H], row 0 input, row 1 recurrent. Keras has no skip input, projection
//   or peepholes: those throw ERR_RNNKIT_ARG.
/**
 * The packed-weight layout of the Recurrent op and its selectors, and the weight records of
 * PyTorch, ONNX and Keras that `importWeights` / `exportWeights` convert (names and layouts in
 * docs/recurrent-semantics.md; `recordShapes` gives the shape of every name of a record).
 *
 * Examples: [Recurrent](../README.md#recurrent-lstm-gru-rnn-tanh-rnn-relu); layout and record
 * formats: [docs/recurrent-semantics.md](../docs/recurrent-semantics.md).
 * @module
 */
import { RnnkitError } from './errors';
import { mix32, xoshiroNext } from './train/random';
import {
  allocFloats, argError, describe, isInstance, readBoolean, readChoice, readInteger, readOptions, readRequiredOptions, shapeError,
} from './args';

/** The cell of a Recurrent op: LSTM (gates i f g o), GRU (r z n), or a plain RNN with tanh or ReLU. */
export type RecurrentMode = 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu';
/** Every recurrent mode. @internal */
export const RECURRENT_MODES: readonly RecurrentMode[] = ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'];
/** Largest input, hidden and projection size the kernels take (native/napi/recurrent_args.cc). @internal */
export const MAX_FEATURE_SIZE = 2 ** 24;
/** Largest layer count the kernels take. @internal */
export const MAX_LAYERS = 1024;
/**
 * A block of one layer and direction in the packed weights: `w_ih` [G·H, I_l], `w_hh` [G·H, R],
 * `b_ih` [G·H], `b_hh` [G·H], `w_proj` [R, H] (LSTM with projSize only), `w_peephole` [3·H]
 * (LSTM with peepholes only, gates i f o).
 */
export type ParamKind = 'w_ih' | 'w_hh' | 'b_ih' | 'b_hh' | 'w_proj' | 'w_peephole';
/** A gate: LSTM `i f g o`, GRU `r z n` (the packed order of each mode). */
export type GateName = 'i' | 'f' | 'g' | 'o' | 'r' | 'z' | 'n';
/** A weight-record format of `importWeights` / `exportWeights` / `recordShapes` (names and layouts in docs/recurrent-semantics.md). */
export type WeightsFormat = 'pytorch' | 'onnx' | 'keras';
/** Weights by name, each flat (row-major in its format's layout); `recordShapes` gives each name's shape. */
export type WeightsRecord = Record<string, Float32Array>;

/** What the packed-weight layout depends on: the layout options of `new Recurrent` (others are accepted and ignored). */
export interface RecurrentLayoutConfig {
  /** The cell. */
  mode: RecurrentMode;
  /** I, features of the input (1 to 2^24). */
  inputSize: number;
  /** H, features of the hidden state (1 to 2^24). */
  hiddenSize: number;
  /** L, stacked layers (1 to 1024, default 1). */
  numLayers?: number;
  /** Two directions per layer (default false). */
  bidirectional?: boolean;
  /** 'linear' (default) or 'skip': layer 0 adds x itself instead of W_ih·x (no w_ih; needs inputSize == hiddenSize). */
  inputMode?: 'linear' | 'skip';
  /** LSTM only: size R of the projected hidden state (default 0: none). */
  projSize?: number;
  /** LSTM only: peephole connections (default false). */
  peepholes?: boolean;
  /** Does not change the layout; the interop formats check it (PyTorch and Keras biases). */
  linearBeforeReset?: boolean;
}

/** Which block of the packed weights `getParam` / `setParam` reads or writes. */
export interface ParamSelector {
  /** The layer, 0 to numLayers − 1. */
  layer: number;
  /** The direction: 0 forward, 1 reverse (bidirectional only). */
  direction: number;
  /** The block. */
  kind: ParamKind;
  /** One gate's rows of w_ih, w_hh, b_ih, b_hh or w_peephole (the whole block when absent); one of the mode's gates, else ERR_RNNKIT_ARG. */
  gate?: GateName;
}

/** A block of the packed buffer: `rows × cols` values from `offset`, row-major (vectors: cols 1). @internal */
export interface ParamSlot {
  offset: number;
  rows: number;
  cols: number;
}

const GATES: Record<RecurrentMode, readonly GateName[]> = {
  lstm: ['i', 'f', 'g', 'o'],
  gru: ['r', 'z', 'n'],
  rnn_tanh: [],
  rnn_relu: [],
};
const PEEPHOLE_GATES: readonly GateName[] = ['i', 'f', 'o'];

interface Layout {
  mode: RecurrentMode;
  G: number;
  I: number;
  H: number;
  L: number;
  D: number;
  R: number;
  skip: boolean;
  proj: boolean;
  peepholes: boolean;
  linearBeforeReset: boolean;
  /** slots[l·D + d]: the blocks of that layer and direction present in this configuration. */
  slots: Array<Partial<Record<ParamKind, ParamSlot>>>;
  size: number;
}

/**
 * The keys a layout configuration may hold: every option of `new Recurrent`, so the options given
 * to the op can be passed here as they are (only the layout ones matter).
 * @internal
 */
export const RECURRENT_OPTION_KEYS = ['mode', 'inputSize', 'hiddenSize', 'numLayers', 'bidirectional', 'dropout',
  'inputMode', 'batchFirst', 'projSize', 'cellClip', 'peepholes', 'linearBeforeReset', 'device', 'seed', 'algorithm'] as const;
const PARAM_KINDS: readonly ParamKind[] = ['w_ih', 'w_hh', 'b_ih', 'b_hh', 'w_proj', 'w_peephole'];
const SELECTOR_KEYS = ['layer', 'direction', 'kind', 'gate'] as const;

function layoutOf(config: RecurrentLayoutConfig): Layout {
  if (typeof config !== 'object' || config === null) throw argError('config must be an object');
  const cfg = readOptions(config, RECURRENT_OPTION_KEYS, 'the recurrent config');
  const mode = readChoice(cfg.mode, 'mode', RECURRENT_MODES);
  const I = readInteger(cfg.inputSize, 'inputSize', 1, MAX_FEATURE_SIZE);
  const H = readInteger(cfg.hiddenSize, 'hiddenSize', 1, MAX_FEATURE_SIZE);
  const L = readInteger(cfg.numLayers, 'numLayers', 1, MAX_LAYERS, 1);
  const projSize = readInteger(cfg.projSize, 'projSize', 0, MAX_FEATURE_SIZE, 0);
  const inputMode = readChoice(cfg.inputMode, 'inputMode', ['linear', 'skip'], 'linear');
  const skip = inputMode === 'skip';
  if (skip && I !== H) throw argError(`skip input needs inputSize == hiddenSize (got ${I} and ${H})`);
  const peepholes = readBoolean(cfg.peepholes, 'peepholes', false);
  if (mode !== 'lstm' && (projSize > 0 || peepholes)) {
    throw argError('projSize and peepholes apply to mode lstm only');
  }
  const G = mode === 'lstm' ? 4 : mode === 'gru' ? 3 : 1;
  const D = readBoolean(cfg.bidirectional, 'bidirectional', false) ? 2 : 1;
  const R = projSize > 0 ? projSize : H;
  const slots: Layout['slots'] = [];
  let size = 0;
  const block = (rows: number, cols: number): ParamSlot => {
    const slot = { offset: size, rows, cols };
    size += rows * cols;
    // Every factor is at most 2^24 and there are at most 2^13 blocks: past 2^53 the sum is refused
    // before it could lose its exactness.
    if (!Number.isSafeInteger(size)) throw shapeError(`the packed weights of this configuration (hiddenSize ${H}, numLayers ${L}) are too large`);
    return slot;
  };
  for (let l = 0; l < L; l++) {
    for (let d = 0; d < D; d++) {
      const slot: Partial<Record<ParamKind, ParamSlot>> = {};
      if (!(skip && l === 0)) slot.w_ih = block(G * H, l === 0 ? I : D * R);
      slot.w_hh = block(G * H, R);
      slot.b_ih = block(G * H, 1);
      slot.b_hh = block(G * H, 1);
      if (projSize > 0) slot.w_proj = block(R, H);
      if (peepholes) slot.w_peephole = block(3 * H, 1);
      slots.push(slot);
    }
  }
  return {
    mode, G, I, H, L, D, R, skip, peepholes, slots, size,
    proj: projSize > 0,
    linearBeforeReset: readBoolean(cfg.linearBeforeReset, 'linearBeforeReset', true),
  };
}

/** Number of float32 values in the packed weights of `cfg`. @internal */
export function weightsSize(cfg: RecurrentLayoutConfig): number {
  return layoutOf(cfg).size;
}

/**
 * Where one parameter block lives in the packed weights (Caffe2's RecurrentParamGet/Set).
 * With `gate`, the rows of that gate only (LSTM i f g o, GRU r z n; peepholes i f o).
 * @internal
 */
export function paramSlot(cfg: RecurrentLayoutConfig, selector: ParamSelector): ParamSlot {
  const lay = layoutOf(cfg);
  const o = readRequiredOptions(selector, SELECTOR_KEYS, 'the selector', 'selector must be an object { layer, direction, kind, gate? }');
  const layer = readInteger(o.layer, 'layer', 0, lay.L - 1);
  const direction = readInteger(o.direction, 'direction', 0, lay.D - 1);
  const kind = readChoice(o.kind, 'kind', PARAM_KINDS);
  const gate = o.gate === undefined ? undefined : (o.gate as GateName);
  const slot = lay.slots[layer * lay.D + direction][kind];
  if (!slot) throw argError(`no ${kind} block in layer ${layer} of this configuration`);
  if (gate === undefined) return { ...slot };
  const gates = kind === 'w_peephole' ? PEEPHOLE_GATES : kind === 'w_proj' ? [] : GATES[lay.mode];
  const k = gates.indexOf(gate);
  if (k < 0) {
    const allowed = gates.length > 0 ? `one of ${gates.join(' ')}` : 'absent';
    throw argError(`gate for ${kind} of mode ${lay.mode} must be ${allowed} (got ${describe(gate)})`);
  }
  return { offset: slot.offset + k * lay.H * slot.cols, rows: lay.H, cols: slot.cols };
}

// xoshiro128** (small, fast, identical on every platform). Its state is seeded from the low and
// high 32 bits of the seed separately through murmur3's bijective finalizer, so distinct seeds
// give distinct streams.
function makeUniform(seed: number): () => number {
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 4294967296);
  const golden = 0x9e3779b9;
  const s = [mix32((lo + golden) | 0), mix32((lo + 2 * golden) | 0), mix32((hi + golden) | 0), mix32((hi + 2 * golden) | 0)];
  // 24 bits: every draw is exact in float32.
  return () => (xoshiroNext(s) >>> 8) / 16777216;
}

/** Packed weights drawn from U(−1/√H, 1/√H) like PyTorch, reproducibly from `seed`. @internal */
export function initWeights(cfg: RecurrentLayoutConfig, seed: number): Float32Array {
  const lay = layoutOf(cfg);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw argError(`seed must be a non-negative safe integer (got ${describe(seed)})`);
  }
  const uniform = makeUniform(seed);
  const bound = 1 / Math.sqrt(lay.H);
  const weights = allocFloats(lay.size, 'the packed weights', 'initWeights');
  for (let k = 0; k < weights.length; k++) weights[k] = (2 * uniform() - 1) * bound;
  return weights;
}

// A strided run of `count` values shared by a record array and the packed weights. `merge`, when
// set, is a second weights run (same stride) summed into the record on export and zeroed on
// import (Keras' single bias).
interface Run {
  rec: number;
  recStride: number;
  w: number;
  wStride: number;
  count: number;
  merge?: number;
}

interface RecordEntry {
  name: string;
  shape: number[];
  runs: Run[];
}

const contiguous = (rec: number, w: number, count: number): Run => ({ rec, recStride: 1, w, wStride: 1, count });

// Their gate position p holds our gate order[p].
const ONNX_ORDER: Record<RecurrentMode, number[]> = { lstm: [0, 3, 1, 2], gru: [1, 0, 2], rnn_tanh: [0], rnn_relu: [0] };
const KERAS_ORDER: Record<RecurrentMode, number[]> = { lstm: [0, 1, 2, 3], gru: [1, 0, 2], rnn_tanh: [0], rnn_relu: [0] };
const ONNX_PEEPHOLE_ORDER = [0, 2, 1];

function unsupported(format: WeightsFormat, what: string): RnnkitError {
  return argError(`format '${format}' cannot represent ${what}`);
}

function slotOf(lay: Layout, l: number, d: number, kind: ParamKind): ParamSlot {
  const slot = lay.slots[l * lay.D + d][kind];
  if (!slot) throw new RnnkitError('ERR_RNNKIT_INTERNAL', `missing ${kind} in layer ${l}`);
  return slot;
}

function pytorchEntries(lay: Layout): RecordEntry[] {
  if (lay.skip) throw unsupported('pytorch', 'skip input');
  if (lay.peepholes) throw unsupported('pytorch', 'peepholes');
  if (lay.mode === 'gru' && !lay.linearBeforeReset) throw unsupported('pytorch', 'a GRU with linearBeforeReset false');
  return blocksOf(lay).map((b) => ({
    name: b.name, shape: b.shape, runs: [contiguous(0, b.offset, b.shape.reduce((x, y) => x * y, 1))],
  }));
}

function onnxEntries(lay: Layout): RecordEntry[] {
  if (lay.skip) throw unsupported('onnx', 'skip input');
  if (lay.proj) throw unsupported('onnx', 'an LSTM projection');
  const { H, D, G } = lay;
  const GH = G * H;
  const order = ONNX_ORDER[lay.mode];
  const entries: RecordEntry[] = [];
  for (let l = 0; l < lay.L; l++) {
    const suffix = lay.L > 1 ? `_l${l}` : '';
    const I = slotOf(lay, l, 0, 'w_ih').cols;
    const W: Run[] = [];
    const R: Run[] = [];
    const B: Run[] = [];
    const P: Run[] = [];
    for (let d = 0; d < D; d++) {
      const wih = slotOf(lay, l, d, 'w_ih');
      const whh = slotOf(lay, l, d, 'w_hh');
      const bih = slotOf(lay, l, d, 'b_ih');
      const bhh = slotOf(lay, l, d, 'b_hh');
      order.forEach((ours, p) => {
        W.push(contiguous((d * GH + p * H) * I, wih.offset + ours * H * I, H * I));
        R.push(contiguous((d * GH + p * H) * H, whh.offset + ours * H * H, H * H));
        B.push(contiguous(d * 2 * GH + p * H, bih.offset + ours * H, H));
        B.push(contiguous(d * 2 * GH + GH + p * H, bhh.offset + ours * H, H));
      });
      if (lay.peepholes) {
        const peep = slotOf(lay, l, d, 'w_peephole');
        ONNX_PEEPHOLE_ORDER.forEach((ours, p) => P.push(contiguous(d * 3 * H + p * H, peep.offset + ours * H, H)));
      }
    }
    entries.push({ name: `W${suffix}`, shape: [D, GH, I], runs: W });
    entries.push({ name: `R${suffix}`, shape: [D, GH, H], runs: R });
    entries.push({ name: `B${suffix}`, shape: [D, 2 * GH], runs: B });
    if (lay.peepholes) entries.push({ name: `P${suffix}`, shape: [D, 3 * H], runs: P });
  }
  return entries;
}

function kerasEntries(lay: Layout): RecordEntry[] {
  if (lay.skip) throw unsupported('keras', 'skip input');
  if (lay.proj) throw unsupported('keras', 'an LSTM projection');
  if (lay.peepholes) throw unsupported('keras', 'peepholes');
  const H = lay.H;
  const GH = lay.G * H;
  const order = KERAS_ORDER[lay.mode];
  const separateBiases = lay.mode === 'gru' && lay.linearBeforeReset;
  const entries: RecordEntry[] = [];
  for (let l = 0; l < lay.L; l++) {
    for (let d = 0; d < lay.D; d++) {
      const prefix = `layer${l}_${d === 0 ? 'fw' : 'bw'}/`;
      const wih = slotOf(lay, l, d, 'w_ih');
      const whh = slotOf(lay, l, d, 'w_hh');
      const bih = slotOf(lay, l, d, 'b_ih');
      const bhh = slotOf(lay, l, d, 'b_hh');
      // Keras stores kernels transposed: record element (i, p·H + j) is our row order[p]·H + j.
      const transposed = (slot: ParamSlot): Run[] => {
        const runs: Run[] = [];
        order.forEach((ours, p) => {
          for (let j = 0; j < H; j++) {
            runs.push({ rec: p * H + j, recStride: GH, w: slot.offset + (ours * H + j) * slot.cols, wStride: 1, count: slot.cols });
          }
        });
        return runs;
      };
      const bias: Run[] = [];
      order.forEach((ours, p) => {
        if (separateBiases) {
          bias.push(contiguous(p * H, bih.offset + ours * H, H));
          bias.push(contiguous(GH + p * H, bhh.offset + ours * H, H));
        } else {
          bias.push({ ...contiguous(p * H, bih.offset + ours * H, H), merge: bhh.offset + ours * H });
        }
      });
      entries.push({ name: `${prefix}kernel`, shape: [wih.cols, GH], runs: transposed(wih) });
      entries.push({ name: `${prefix}recurrent_kernel`, shape: [whh.cols, GH], runs: transposed(whh) });
      entries.push({ name: `${prefix}bias`, shape: separateBiases ? [2, GH] : [GH], runs: bias });
    }
  }
  return entries;
}

function entriesOf(lay: Layout, format: WeightsFormat): RecordEntry[] {
  if (format === 'pytorch') return pytorchEntries(lay);
  if (format === 'onnx') return onnxEntries(lay);
  if (format === 'keras') return kerasEntries(lay);
  throw argError(`format must be 'pytorch', 'onnx' or 'keras' (got ${describe(format)})`);
}

const elementCount = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

function checkWeights(lay: Layout, weights: unknown): asserts weights is Float32Array {
  if (!isInstance(weights, Float32Array)) {
    throw new RnnkitError('ERR_RNNKIT_DTYPE', 'weights must be a Float32Array');
  }
  if (weights.length !== lay.size) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `weights has ${weights.length} values; this configuration packs ${lay.size}`);
  }
}

/** Name → shape of every array that `format` exchanges for `cfg` (record values are flat). */
export function recordShapes(cfg: RecurrentLayoutConfig, format: WeightsFormat): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const entry of entriesOf(layoutOf(cfg), format)) shapes[entry.name] = entry.shape;
  return shapes;
}

/** The packed weights as a record of `format` (see the naming at the top of this file). @internal */
export function exportWeights(cfg: RecurrentLayoutConfig, weights: Float32Array, format: WeightsFormat): WeightsRecord {
  const lay = layoutOf(cfg);
  checkWeights(lay, weights);
  const record: WeightsRecord = {};
  for (const entry of entriesOf(lay, format)) {
    const values = allocFloats(elementCount(entry.shape), entry.name, 'exportWeights');
    for (const run of entry.runs) {
      for (let k = 0; k < run.count; k++) {
        const w = run.w + k * run.wStride;
        values[run.rec + k * run.recStride] = run.merge === undefined ? weights[w] : weights[w] + weights[run.merge + k * run.wStride];
      }
    }
    record[entry.name] = values;
  }
  return record;
}

/**
 * Writes a record of `format` into `weights` (in place; also returned). The record must hold
 * exactly the names of `recordShapes(cfg, format)`; nothing is written unless all of it checks.
 * @internal
 */
export function importWeights(
  cfg: RecurrentLayoutConfig,
  weights: Float32Array,
  format: WeightsFormat,
  record: WeightsRecord,
): Float32Array {
  const lay = layoutOf(cfg);
  checkWeights(lay, weights);
  const entries = entriesOf(lay, format);
  if (typeof record !== 'object' || record === null) throw argError('record must be an object of Float32Arrays');
  const expected = new Set(entries.map((e) => e.name));
  const unexpected = Object.keys(record).filter((name) => !expected.has(name));
  if (unexpected.length > 0) {
    throw argError(`unexpected ${format} names ${unexpected.join(', ')}; expected ${[...expected].join(', ')}`);
  }
  for (const entry of entries) {
    const values: unknown = record[entry.name];
    if (values === undefined) throw argError(`${format} record lacks ${entry.name}`);
    if (!isInstance(values, Float32Array)) {
      throw new RnnkitError('ERR_RNNKIT_DTYPE', `${entry.name} must be a Float32Array`);
    }
    if (values.length !== elementCount(entry.shape)) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE',
        `${entry.name} has ${values.length} values; expected [${entry.shape.join(', ')}] = ${elementCount(entry.shape)}`);
    }
  }
  for (const entry of entries) {
    const values = record[entry.name];
    for (const run of entry.runs) {
      for (let k = 0; k < run.count; k++) {
        weights[run.w + k * run.wStride] = values[run.rec + k * run.recStride];
        if (run.merge !== undefined) weights[run.merge + k * run.wStride] = 0;
      }
    }
  }
  return weights;
}

/** One parameter block of the packed weights, named like PyTorch's (see `packedBlocks`). @internal */
export interface PackedBlock {
  /** weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k}, weight_peephole_l{k}; suffix _reverse for direction 1. */
  name: string;
  kind: ParamKind;
  layer: number;
  direction: number;
  offset: number;
  /** [rows, cols], or [rows] for vectors. */
  shape: number[];
}

const BLOCK_STEMS: Array<[ParamKind, string]> = [
  ['w_ih', 'weight_ih'], ['w_hh', 'weight_hh'], ['b_ih', 'bias_ih'], ['b_hh', 'bias_hh'], ['w_proj', 'weight_hr'],
  ['w_peephole', 'weight_peephole'],
];

/**
 * Every block of the packed weights in packed order, which is PyTorch's parameter order: per
 * layer and direction w_ih, w_hh, b_ih, b_hh, then the projection. Names are PyTorch's; the
 * blocks PyTorch lacks (peepholes) get names of the same form.
 * @internal
 */
export function packedBlocks(cfg: RecurrentLayoutConfig): PackedBlock[] {
  return blocksOf(layoutOf(cfg));
}

function blocksOf(lay: Layout): PackedBlock[] {
  const out: PackedBlock[] = [];
  for (let l = 0; l < lay.L; l++) {
    for (let d = 0; d < lay.D; d++) {
      for (const [kind, stem] of BLOCK_STEMS) {
        const slot = lay.slots[l * lay.D + d][kind];
        if (!slot) continue;
        out.push({
          name: `${stem}_l${l}${d === 1 ? '_reverse' : ''}`, kind, layer: l, direction: d, offset: slot.offset,
          shape: slot.cols === 1 ? [slot.rows] : [slot.rows, slot.cols],
        });
      }
    }
  }
  return out;
}
