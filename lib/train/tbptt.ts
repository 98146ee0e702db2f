/**
 * Truncated backpropagation through time over a long sequence.
 *
 * The sequence of `length` steps is cut into segments of `segmentLength` steps; gradients never
 * cross a segment boundary, while the recurrent state does: each segment starts from the previous
 * segment's final hy / cy, taken as plain values (detached). Inside a segment the model runs in
 * chunks of `chunkLength` steps (default: the whole segment, one forward and one backward call);
 * smaller chunks bound the memory of the saved activations. The chunks' forwards run in order,
 * then their backwards in reverse, each chunk's backward receiving as dhy / dcy the dhx / dcx of
 * the chunk after it (zeros after the segment's last chunk), so the gradient of a segment is the
 * same whatever its chunking. Weight gradients of all chunks of a segment are summed into
 * `dweights` (overwritten by the segment's first backward).
 *
 * `head(y, chunk)` runs the layers above the recurrent model for one chunk: it returns the chunk's
 * loss and dy = ∂loss/∂y (and handles its own parameters' gradients). `onSegment(segment)` runs
 * after each segment's backward: clip, step the optimizer, log. `input(start, length)` supplies
 * the input of a chunk, so the whole sequence never needs to be in memory.
 */
import { RnnkitError } from '../errors';
import { allocFloats, argError, readFunction, readGuarded, readInteger, readRecord, readRequiredOptions, readSeed } from '../args';
import { Tensor, checkTensor, isTensor } from '../tensor';

/** The part of the Recurrent op that TBPTT drives (lib/recurrent.ts implements it). */
export interface RecurrentModel {
  /** The packed weights (a Tensor); the weight gradients have its size. */
  readonly weights: Tensor;
  /** Whether x and y are [B, T, F] (then the input chunks are too). */
  readonly batchFirst: boolean;
  /** A training forward of one chunk from the state hx / cx (see `Recurrent.forward`). */
  forward(x: Tensor, options: { hx?: Tensor | null; cx?: Tensor | null; training?: boolean; dropoutSeed?: number }):
    Promise<{
      /** The chunk's outputs. */
      y: Tensor;
      /** The final hidden state. */
      hy: Tensor;
      /** The final cell state (null unless LSTM). */
      cy: Tensor | null;
      /** What backward needs. */
      saved: unknown;
    }>;
  /** The backward of one chunk (see `Recurrent.backward`). */
  backward(saved: never, options: { dy?: Tensor | null; dhy?: Tensor | null; dcy?: Tensor | null; accumulate?: boolean; dweights?: Tensor | null }):
    Promise<{
      /** The gradient of the chunk's input. */
      dx: Tensor;
      /** The gradient of the chunk's initial hidden state (passed as dhy to the chunk before). */
      dhx: Tensor;
      /** The gradient of the chunk's initial cell state (null unless LSTM). */
      dcx: Tensor | null;
      /** The weight gradients. */
      dweights: Tensor;
    }>;
}

/** Where a chunk lies: what `head`, `input` and `dropoutSeed` are told. */
export interface ChunkInfo {
  /** The index of its segment, from 0. */
  segment: number;
  /** First timestep of the chunk in the whole sequence. */
  start: number;
  /** Its timesteps (chunkLength, or fewer for a segment's last chunk). */
  length: number;
}

/** What `onSegment` is given after a segment's backward. */
export interface SegmentInfo {
  /** The index of the segment, from 0. */
  index: number;
  /** Its first timestep in the whole sequence. */
  start: number;
  /** Its timesteps (segmentLength, or fewer for the last segment). */
  length: number;
  /** Sum of the chunks' losses. */
  loss: number;
  /** The segment's weight gradients (the same tensor every segment: overwritten by each). */
  dweights: Tensor;
  /** The hidden state after the segment (the next segment starts from it). */
  hy: Tensor;
  /** The cell state after the segment (null unless LSTM). */
  cy: Tensor | null;
}

/** Options of `tbptt`. Bad ones throw ERR_RNNKIT_ARG naming the option. */
export interface TbpttOptions {
  /** The recurrent model to train (a Recurrent, or anything with its forward and backward). */
  model: RecurrentModel;
  /** Total timesteps. */
  length: number;
  /** Timesteps per segment: gradients never cross a segment boundary (an integer >= 1). */
  segmentLength: number;
  /** Timesteps per forward/backward call inside a segment (default and at most segmentLength); bounds the saved activations. */
  chunkLength?: number;
  /** The input of steps [start, start + length), shaped [length, B, I] (batchFirst: [B, length, I]). */
  input: Tensor | ((start: number, length: number) => Tensor | Promise<Tensor>);
  /** The initial hidden state of the first segment (zeros when absent). */
  hx?: Tensor | null;
  /** The initial cell state of the first segment, LSTM only (zeros when absent). */
  cx?: Tensor | null;
  /** Where the weight gradients go (default: a new tensor shaped like model.weights). */
  dweights?: Tensor;
  /**
   * The layers above the model for one chunk: returns the chunk's loss and dy = ∂loss/∂y (y's
   * shape), and handles its own parameters' gradients.
   */
  head: (y: Tensor, chunk: ChunkInfo) => Promise<{
    /** The chunk's loss. */
    loss: number;
    /** ∂loss/∂y. */
    dy: Tensor;
  }> | {
    /** The chunk's loss. */
    loss: number;
    /** ∂loss/∂y. */
    dy: Tensor;
  };
  /** Runs after each segment's backward (clip, step the optimizer, log); awaited. */
  onSegment?: (segment: SegmentInfo) => Promise<void> | void;
  /** Dropout seed of each chunk (default: the model's own sequence). */
  dropoutSeed?: (chunk: ChunkInfo) => number;
}

/** What `tbptt` resolves to. */
export interface TbpttResult {
  /** Loss of each segment. */
  losses: number[];
  /** The hidden state after the last segment. */
  hy: Tensor | null;
  /** The cell state after the last segment (null unless LSTM). */
  cy: Tensor | null;
}

const OPTION_KEYS = ['model', 'length', 'segmentLength', 'chunkLength', 'input', 'hx', 'cx', 'dweights', 'head',
  'onSegment', 'dropoutSeed'] as const;

const readCount = (v: unknown, what: string, fallback?: number): number =>
  readInteger(v, what, 1, Number.MAX_SAFE_INTEGER, fallback);

// Steps [start, start + len) of a whole-sequence input tensor, as a new tensor.
function sliceSteps(x: Tensor, batchFirst: boolean, start: number, len: number): Tensor {
  const data = x.device === 'cpu' ? x.data : x.readSync();
  if (!batchFirst) {
    const row = x.size / x.shape[0];
    return Tensor.fromCpu(data.slice(start * row, (start + len) * row), [len, ...x.shape.slice(1)]).to(x.device);
  }
  const [B, T, I] = x.shape;
  const out = allocFloats(B * len * I, 'the input chunk', 'tbptt');
  for (let b = 0; b < B; b++) out.set(data.subarray((b * T + start) * I, (b * T + start + len) * I), b * len * I);
  return Tensor.fromCpu(out, [B, len, I]).to(x.device);
}

/**
 * The seed `dropoutSeed` returned for a chunk. It must be a number: a Promise is refused (and its
 * rejection, if any, handled here: left alone it would end the process as an unhandled one).
 */
function chunkSeed(seed: unknown): number {
  if (typeof seed === 'object' && seed !== null && readGuarded(() => typeof (seed as { then?: unknown }).then === 'function', 'the seed')) {
    (seed as Promise<unknown>).then(undefined, () => undefined);
    throw argError('dropoutSeed must return a seed (a non-negative safe integer), not a Promise');
  }
  return readSeed(seed, 'the seed dropoutSeed returned');
}

/**
 * Runs truncated BPTT over the sequence; resolves to per-segment losses and the final state.
 * Throws ERR_RNNKIT_ARG for bad options (or a `dropoutSeed` that returns no seed) and
 * ERR_RNNKIT_SHAPE when an input tensor holds fewer than `length` steps; errors of the model,
 * `head`, `input` and `onSegment` propagate.
 */
export async function tbptt(tbpttOptions: TbpttOptions): Promise<TbpttResult> {
  const options = readRequiredOptions(tbpttOptions, OPTION_KEYS, 'tbptt options', 'tbptt needs options') as TbpttOptions;
  const { model } = options;
  const usable = typeof model === 'object' && model !== null &&
    readGuarded(() => typeof model.forward === 'function' && typeof model.backward === 'function' &&
      isTensor(model.weights) && typeof model.batchFirst === 'boolean', 'model');
  if (!usable) throw argError('model must have forward, backward, weights and batchFirst (a Recurrent)');
  const batchFirst = model.batchFirst;
  const weights = checkTensor(model.weights, 'model.weights');
  const head = readFunction<TbpttOptions['head']>(options.head, 'head', '(y, chunk) => { loss, dy }');
  if (options.onSegment !== undefined) readFunction(options.onSegment, 'onSegment', '(segment) => void');
  if (options.dropoutSeed !== undefined) readFunction(options.dropoutSeed, 'dropoutSeed', '(chunk) => number');
  const length = readCount(options.length, 'length');
  const segmentLength = readCount(options.segmentLength, 'segmentLength');
  const chunkLength = Math.min(readCount(options.chunkLength, 'chunkLength', segmentLength), segmentLength);
  const input = options.input;
  if (isTensor(input)) {
    checkTensor(input, 'input', 3);
    const T = batchFirst ? input.shape[1] : input.shape[0];
    if (T < length) throw new RnnkitError('ERR_RNNKIT_SHAPE', `input holds ${T} steps, length is ${length}`);
  } else {
    readFunction(input, 'input', '(start, length) => Tensor, or a Tensor');
  }
  const getInput = async (start: number, len: number): Promise<Tensor> =>
    isTensor(input) ? sliceSteps(input, batchFirst, start, len) : input(start, len);
  const dweights = options.dweights ?? Tensor.fromCpu(allocFloats(weights.size, 'dweights', 'tbptt'), weights.shape);
  let hx = options.hx ?? null;
  let cx = options.cx ?? null;
  const losses: number[] = [];
  for (let seg = 0, start = 0; start < length; seg++, start += segmentLength) {
    const segLen = Math.min(segmentLength, length - start);
    const chunks: Array<{ info: ChunkInfo; saved: unknown; dy: Tensor }> = [];
    let loss = 0;
    for (let c = start; c < start + segLen; c += chunkLength) {
      const info: ChunkInfo = { segment: seg, start: c, length: Math.min(chunkLength, start + segLen - c) };
      const x = await getInput(info.start, info.length);
      const fwd: { hx: Tensor | null; cx: Tensor | null; training: boolean; dropoutSeed?: number } = { hx, cx, training: true };
      if (options.dropoutSeed) fwd.dropoutSeed = chunkSeed(options.dropoutSeed(info));
      const f = await model.forward(x, fwd);
      const h = readRecord(await head(f.y, info), 'what head returned');
      if (typeof h.loss !== 'number') throw argError('head must return { loss: number, dy: Tensor }');
      const dy = checkTensor(h.dy, 'dy returned by head');
      loss += h.loss;
      chunks.push({ info, saved: f.saved, dy });
      hx = f.hy;
      cx = f.cy;
    }
    let dhy: Tensor | null = null;
    let dcy: Tensor | null = null;
    for (let k = chunks.length - 1; k >= 0; k--) {
      const g = await model.backward(chunks[k].saved as never, {
        dy: chunks[k].dy, dhy, dcy, dweights, accumulate: k !== chunks.length - 1,
      });
      dhy = g.dhx;
      dcy = g.dcx;
    }
    losses.push(loss);
    if (options.onSegment) {
      await options.onSegment({ index: seg, start, length: segLen, loss, dweights, hy: hx as Tensor, cy: cx });
    }
  }
  return { losses, hy: hx, cy: cx };
}
