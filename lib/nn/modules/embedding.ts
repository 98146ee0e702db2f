/**
 * nn.Embedding: a lookup table [numEmbeddings, embeddingDim] (torch.nn.Embedding: `weight`,
 * initialised from N(0, 1) reproducibly from `seed`, the `paddingIdx` row zeroed). The forward
 * gathers rows natively; the backward scatter-adds the output gradient into a dense weight
 * gradient (straight into `weight.grad` when it exists), skipping the padding row, which
 * therefore never trains. Ids outside [0, numEmbeddings) are ERR_RNNKIT_ARG naming the position.
 */
import { RnnkitError } from '../../errors';
import { DeviceSpec, resolveDevice } from '../../device';
import { Tensor, isTensor, tensor } from '../../tensor';
import { Rng, randomSeed } from '../../train/random';
import { ACCUMULATED, record, shouldRecord } from '../engine';
import { kernelsFor } from '../kernels';
import { MaybePromise, then } from '../maybe';
import { Module } from '../module';
import { parameter, parameterSize } from '../parameter';
import { allocFloats, copyOf, describe, isInstance, readInteger, readOptions, readSeed, readShape } from '../../args';

/** Options of nn.Embedding. */
export interface EmbeddingOptions {
  /** Rows of the table: the number of distinct ids (an integer from 1 to 2^31). */
  numEmbeddings: number;
  /** Features of each row (an integer from 1 to 2^31). */
  embeddingDim: number;
  /** A row that stays zero and gets no gradient (negative counts from the end, as in PyTorch). */
  paddingIdx?: number | null;
  /** Initial table (copied): numEmbeddings·embeddingDim values. Default N(0, 1). */
  weight?: Float32Array | Tensor;
  /** Seeds the initial table; a random one when absent. */
  seed?: number;
  /** Default 'cpu'. */
  device?: DeviceSpec;
}

const EMBEDDING_KEYS = ['numEmbeddings', 'embeddingDim', 'paddingIdx', 'weight', 'seed', 'device'];

/** n values from N(0, 1) (Box–Muller over the 24-bit uniforms of Rng). */
function normals(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = allocFloats(n, 'the embedding table', 'new nn.Embedding');
  for (let k = 0; k < n; k += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rng.uniform()));
    const a = 2 * Math.PI * rng.uniform();
    out[k] = r * Math.cos(a);
    if (k + 1 < n) out[k + 1] = r * Math.sin(a);
  }
  return out;
}

/** A table of learned vectors looked up by integer id. */
export class Embedding extends Module {
  /** Rows of the table (the ids' range). */
  readonly numEmbeddings: number;
  /** Length of each vector. */
  readonly embeddingDim: number;
  /** The padding row in [0, numEmbeddings), or null. */
  readonly paddingIdx: number | null;
  /** [numEmbeddings, embeddingDim]. */
  weight: Tensor;

  /**
   * Creates the table from `weight` (copied) or from N(0, 1) draws from `seed` (the padding row then
   * zero), on `device` (default the CPU). Throws ERR_RNNKIT_ARG naming a bad option (paddingIdx
   * outside [−numEmbeddings, numEmbeddings) included), ERR_RNNKIT_DTYPE for a weight that is neither
   * a Float32Array nor a Tensor, ERR_RNNKIT_SHAPE for one of the wrong size.
   */
  constructor(options: EmbeddingOptions) {
    super();
    const o = readOptions(options, EMBEDDING_KEYS, 'Embedding options');
    const V = (this.numEmbeddings = readInteger(o.numEmbeddings, 'numEmbeddings', 1, 2 ** 31));
    const D = (this.embeddingDim = readInteger(o.embeddingDim, 'embeddingDim', 1, 2 ** 31));
    let pad: number | null = null;
    if (o.paddingIdx !== undefined && o.paddingIdx !== null) {
      const p = o.paddingIdx;
      if (typeof p !== 'number' || !Number.isInteger(p) || p < -V || p >= V) {
        throw new RnnkitError('ERR_RNNKIT_ARG', `paddingIdx must be an integer in [${-V}, ${V}) (got ${describe(p)})`);
      }
      pad = p < 0 ? p + V : p;
    }
    this.paddingIdx = pad;
    parameterSize([V, D], 'the embedding table');
    let values: Float32Array;
    if (o.weight === undefined) {
      values = normals(V * D, readSeed(o.seed, 'seed', randomSeed()));
      if (pad !== null) values.fill(0, pad * D, (pad + 1) * D);
    } else if (isTensor(o.weight)) {
      values = o.weight.readSync();
    } else if (isInstance(o.weight, Float32Array)) {
      values = copyOf(o.weight, 'weight');
    } else {
      throw new RnnkitError('ERR_RNNKIT_DTYPE', 'weight must be a Float32Array or a Tensor');
    }
    if (values.length !== V * D) throw new RnnkitError('ERR_RNNKIT_SHAPE', `weight must hold ${V}·${D} = ${V * D} values, got ${values.length}`);
    this.weight = parameter(tensor(values, [V, D], { device: resolveDevice((o.device ?? 'cpu') as DeviceSpec) }));
  }

  /** The rows of `ids` (an Int32Array holding `shape`'s elements, default [ids.length]): [...shape, embeddingDim]. */
  override async forward(ids: Int32Array, shape?: readonly number[]): Promise<Tensor> {
    return this.run(ids, shape, true);
  }

  /** `forward` on the calling thread. */
  override forwardSync(ids: Int32Array, shape?: readonly number[]): Tensor {
    return this.run(ids, shape, false) as Tensor;
  }

  private run(ids: Int32Array, shape: readonly number[] | undefined, async: boolean): MaybePromise<Tensor> {
    if (!isInstance(ids, Int32Array)) throw new RnnkitError('ERR_RNNKIT_DTYPE', 'ids must be an Int32Array');
    const { dims: s, size: n } = shape === undefined ? { dims: [ids.length], size: ids.length } : readShape(shape);
    if (n !== ids.length) throw new RnnkitError('ERR_RNNKIT_SHAPE', `shape [${s.join(', ')}] holds ${n} ids, got ${ids.length}`);
    const weight = this.weight;
    weight.assertLive('weight');
    // A copy: the async kernels and the backward must see the ids checked now.
    const own = copyOf(ids, 'ids');
    const pad = this.paddingIdx ?? -1;
    const recording = shouldRecord([weight]);
    return then(kernelsFor(weight.device).embedding(weight, own, [...s, this.embeddingDim], async), (y) => {
      if (recording) {
        record('Embedding', [weight], [y], (grads, ctx) => {
          const into = ctx.accumulateInto(0);
          const g = kernelsFor(weight.device).embeddingBackward(grads[0] as Tensor, own, weight.shape, pad, into, ctx.async);
          return then(g, (dw) => [into ? ACCUMULATED : dw]);
        });
      }
      return y;
    });
  }
}
