/**
 * nn.Dropout: in training mode, zeroes each element with probability p and scales the rest by
 * 1/(1 − p) (inverted dropout, torch.nn.Dropout); in eval mode, or with p = 0, returns its input
 * as it is. The mask comes from a counter-based hash of a per-call seed (drawn from the module's
 * seeded generator), so the backward recomputes it instead of storing it.
 */
import { RnnkitError } from '../../errors';
import { Tensor, checkTensor } from '../../tensor';
import { Rng, randomSeed } from '../../train/random';
import { record, shouldRecord } from '../engine';
import { kernelsFor } from '../kernels';
import { MaybePromise, then } from '../maybe';
import { TensorModule } from '../module';
import { describe, readOptions, readSeed } from '../../args';

/** Options of nn.Dropout. */
export interface DropoutOptions {
  /** Probability of zeroing an element, in [0, 1) (default 0.5). */
  p?: number;
  /** Seeds the masks; a random one when absent. */
  seed?: number;
}

/** Randomly zeroes elements during training: `forward(x)` is x with dropout applied (training mode), x itself in eval mode or with p = 0. */
export class Dropout extends TensorModule {
  /** Probability of zeroing an element. */
  readonly p: number;
  private readonly rng: Rng;

  /** Throws ERR_RNNKIT_ARG when p is not in [0, 1) or the seed is bad. */
  constructor(options?: DropoutOptions) {
    super();
    const o = readOptions(options, ['p', 'seed'], 'Dropout options');
    const p = o.p ?? 0.5;
    if (typeof p !== 'number' || !(p >= 0 && Math.fround(p) < 1)) throw new RnnkitError('ERR_RNNKIT_ARG', `p must be in [0, 1) (got ${describe(p)})`);
    this.p = p;
    this.rng = new Rng(readSeed(o.seed, 'seed', randomSeed()));
  }

  protected run(x: Tensor, async: boolean): MaybePromise<Tensor> {
    checkTensor(x, 'x');
    if (!this.training || this.p === 0) return x;
    const { p } = this;
    const seed = this.rng.seed();
    const recording = shouldRecord([x]);
    return then(kernelsFor(x.device).dropout(false, x, p, seed, async), (y) => {
      if (recording) {
        record('Dropout', [x], [y], (grads, ctx) =>
          then(kernelsFor(y.device).dropout(true, grads[0] as Tensor, p, seed, ctx.async), (dx) => [dx]));
      }
      return y;
    });
  }
}
