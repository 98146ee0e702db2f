/**
 * nn.Embedding: a lookup table [numEmbeddings, embeddingDim] (torch.nn.Embedding: `weight`,
 * initialised from N(0, 1) reproducibly from `seed`, the `paddingIdx` row zeroed). The forward
 * gathers rows natively; the backward scatter-adds the output gradient into a dense weight
 * gradient (straight into `weight.grad` when it exists), skipping the padding row, which
 * therefore never trains. Ids outside [0, numEmbeddings) are ERR_RNNKIT_ARG naming the position.
 * Ids are an Int32Array (copied, and uploaded by each call for a table on a device) or an
 * IndexTensor (lib/index-tensor.ts) on the table's device, which costs no copy when its known
 * bounds prove every id in range (else it is read to the host and checked exactly; the run record
 * `backendInfo().lastRuns.Embedding` says so). The backward keeps its own hold on device ids, so
 * disposing the IndexTensor after the forward is safe.
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
import { IndexTensor, readIds } from '../../index-tensor';
import { sliceDevice } from '../../native';
import { recordRun } from '../../run-info';
import type { Ids } from '../kernels';

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

  /**
   * The rows of `ids`: [...shape, embeddingDim]. `ids` is an Int32Array (shape default [ids.length])
   * or an IndexTensor on the table's device (shape default its shape); `shape` must hold as many
   * ids. ERR_RNNKIT_DEVICE for an IndexTensor on another device, ERR_RNNKIT_DISPOSED for a disposed one.
   */
  override async forward(ids: Int32Array | IndexTensor, shape?: readonly number[]): Promise<Tensor> {
    return this.run(ids, shape, true);
  }

  /** `forward` on the calling thread. */
  override forwardSync(ids: Int32Array | IndexTensor, shape?: readonly number[]): Tensor {
    return this.run(ids, shape, false) as Tensor;
  }

  private run(ids: Int32Array | IndexTensor, shape: readonly number[] | undefined, async: boolean): MaybePromise<Tensor> {
    const given = readIds(ids, 'ids');
    const host = isInstance(given, Int32Array);
    const count = host ? given.length : given.size;
    const { dims: s, size: n } = shape === undefined ? { dims: host ? [count] : [...given.shape], size: count } : readShape(shape);
    if (n !== count) throw new RnnkitError('ERR_RNNKIT_SHAPE', `shape [${s.join(', ')}] holds ${n} ids, got ${count}`);
    const weight = this.weight;
    weight.assertLive('weight');
    let own: Ids;
    let fallback: string | null = null;
    if (host) {
      // A copy: the async kernels and the backward must see the ids checked now (the binding checks them).
      own = copyOf(given, 'ids');
    } else {
      ({ ids: own, fallback } = given.idsFor(weight.device, 'ids', this.numEmbeddings, null, null));
    }
    recordRun('Embedding', weight.device, fallback);
    const pad = this.paddingIdx ?? -1;
    const recording = shouldRecord([weight]);
    return then(kernelsFor(weight.device).embedding(weight, own, [...s, this.embeddingDim], async), (y) => {
      if (recording) {
        // Device ids: a native slice of their own, which outlives the caller's dispose of the IndexTensor.
        const saved = isInstance(own, Int32Array) ? own : sliceDevice(own, 0, n);
        record('Embedding', [weight], [y], (grads, ctx) => {
          const into = ctx.accumulateInto(0);
          const g = kernelsFor(weight.device).embeddingBackward(grads[0] as Tensor, saved, weight.shape, pad, into, ctx.async);
          return then(g, (dw) => [into ? ACCUMULATED : dw]);
        });
      }
      return y;
    });
  }
}

