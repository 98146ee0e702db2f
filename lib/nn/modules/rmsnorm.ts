/**
 * nn.RMSNorm: y = x / sqrt(mean(x²) + eps) · weight (+ bias) over the trailing `normalizedShape`
 * axes (torch.nn.RMSNorm's `weight`, ones at start; `bias` is an rnnkit option, zeros, off by
 * default as PyTorch has none). Forward and backward are the native RMSNorm kernels of
 * lib/rmsnorm.ts, the parameter gradients added straight into their `.grad`. `to('cuda')` moves
 * the parameters like any module's: with x there too the CUDA kernels run, gradients included,
 * with no host copy.
 */
import { RnnkitError } from '../../errors';
import { rmsNorm, rmsNormBackward, rmsNormBackwardSync, rmsNormSync, RmsNormResult, RmsNormGradients } from '../../rmsnorm';
import { Tensor, checkTensor } from '../../tensor';
import { ACCUMULATED, record, shouldRecord } from '../engine';
import { MaybePromise, then } from '../maybe';
import { TensorModule } from '../module';
import { parameter, parameterSize } from '../parameter';
import { allocFloats, describe, readArray, readBoolean, readOptions } from '../../args';

/** Options of nn.RMSNorm. */
export interface RMSNormOptions {
  /** The size of the last axis, or the shape of the trailing normalized axes. */
  normalizedShape: number | readonly number[];
  /** Added to the mean of squares, >= 0 (default 1e-6). */
  eps?: number;
  /** A learned bias added after the scale (default false, as in PyTorch). */
  bias?: boolean;
}

/** Root-mean-square normalization over the trailing axes: `forward(x)` is x normalized over its trailing normalizedShape axes. */
export class RMSNorm extends TensorModule {
  /** The shape of the trailing axes normalized over. */
  readonly normalizedShape: readonly number[];
  /** Added to the mean of squares. */
  readonly eps: number;
  /** The scale, shaped normalizedShape. */
  weight: Tensor;
  /** The bias, or null (the default). */
  bias: Tensor | null;

  /**
   * Creates weight (ones) and, with `bias`, bias (zeros), shaped normalizedShape. Throws
   * ERR_RNNKIT_ARG for a normalizedShape that is not a positive integer or a shape of them, or an
   * eps that is not a finite number >= 0.
   */
  constructor(options: RMSNormOptions) {
    super();
    const o = readOptions(options, ['normalizedShape', 'eps', 'bias'], 'RMSNorm options');
    const ns = o.normalizedShape;
    const shape = typeof ns === 'number' ? [ns] : typeof ns === 'object' && ns !== null ? readArray(ns, 'normalizedShape', 64) : null;
    if (shape === null || shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 1)) {
      throw new RnnkitError('ERR_RNNKIT_ARG', `normalizedShape must be a positive integer or a shape of them (got ${describe(ns)})`);
    }
    const eps = o.eps ?? 1e-6;
    if (typeof eps !== 'number' || !Number.isFinite(eps) || eps < 0) throw new RnnkitError('ERR_RNNKIT_ARG', `eps must be a finite number >= 0 (got ${describe(eps)})`);
    const dims = shape as number[];
    this.normalizedShape = Object.freeze(dims);
    this.eps = eps;
    const bias = readBoolean(o.bias, 'bias', false);
    const size = parameterSize(dims, 'the RMSNorm weight', bias ? 2 : 1);
    this.weight = parameter(Tensor.fromCpu(allocFloats(size, 'the weight', 'new nn.RMSNorm').fill(1), dims));
    this.bias = bias ? parameter(Tensor.fromCpu(allocFloats(size, 'the bias', 'new nn.RMSNorm'), dims)) : null;
  }

  protected run(x: Tensor, async: boolean): MaybePromise<Tensor> {
    checkTensor(x, 'x');
    const { weight, bias } = this;
    const axis = -this.normalizedShape.length;
    const tail = x.shape.slice(axis);
    if (x.rank < this.normalizedShape.length || tail.some((d, k) => d !== this.normalizedShape[k])) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `x [${x.shape.join(', ')}] must end in [${this.normalizedShape.join(', ')}]`);
    }
    const recording = shouldRecord([x, weight, bias]);
    const options = { axis, eps: this.eps };
    const result: MaybePromise<RmsNormResult> = async ? rmsNorm(x, weight, bias, options) : rmsNormSync(x, weight, bias, options);
    return then(result, ({ y, rrms }) => {
      if (recording) {
        record('RMSNorm', [x, weight, bias], [y], (grads, ctx) => {
          const dgamma = ctx.accumulateInto(1);
          const dbeta = bias ? ctx.accumulateInto(2) : null;
          const into = dgamma !== null && (bias === null || dbeta !== null);
          const o = {
            axis, bias: bias !== null, accumulate: into,
            ...(into ? { dgamma: dgamma as Tensor, ...(dbeta ? { dbeta } : {}) } : {}),
          };
          const dy = grads[0] as Tensor;
          const g: MaybePromise<RmsNormGradients> = ctx.async ? rmsNormBackward(x, rrms, dy, weight, o) : rmsNormBackwardSync(x, rrms, dy, weight, o);
          return then(g, (r) => {
            if (into) {
              (dgamma as Tensor).bumpVersion();
              dbeta?.bumpVersion();
            }
            return [r.dx, into ? ACCUMULATED : r.dgamma, bias ? (into ? ACCUMULATED : r.dbeta) : null];
          });
        }, { saved: [x, weight, bias] });
      }
      return y;
    });
  }
}
