/**
 * nn.Linear: y = x·Wᵀ + b over the last axis (torch.nn.Linear: `weight` [out, in], `bias` [out],
 * PyTorch's default init U(−1/√in, 1/√in), reproducible from `seed`). The forward and the
 * backward are lib/train/linear.ts's (native GEMMs, the native bias add and bias-gradient sum);
 * the backward adds the weight and bias gradients straight into their `.grad` with the GEMM's
 * accumulate. Options as lib/train/linear.ts's LinearOptions: inFeatures, outFeatures, bias (default
 * true), seed, device (default 'cpu').
 */
import { DeviceSpec, resolveDevice } from '../../device';
import { Tensor, tensor } from '../../tensor';
import { LinearOptions, linearBackward, linearForward, linearInit } from '../../train/linear';
import { randomSeed } from '../../train/random';
import { ACCUMULATED, record, shouldRecord } from '../engine';
import { MaybePromise, then } from '../maybe';
import { TensorModule } from '../module';
import { parameter, parameterSize } from '../parameter';
import { readBoolean, readInteger, readOptions, readSeed } from '../../args';

const LINEAR_KEYS = ['inFeatures', 'outFeatures', 'bias', 'seed', 'device'];

/** A fully connected layer, y = x·Wᵀ + b: `forward(x)` is y [..., out] for x [..., in]. */
export class Linear extends TensorModule {
  /** Features of x. */
  readonly inFeatures: number;
  /** Features of y. */
  readonly outFeatures: number;
  /** [outFeatures, inFeatures]. */
  weight: Tensor;
  /** [outFeatures], or null without bias. */
  bias: Tensor | null;

  /**
   * Draws weight and bias from `seed` (U(−1/√inFeatures, 1/√inFeatures), as PyTorch does) on
   * `device` (default the CPU). Throws ERR_RNNKIT_ARG naming a bad option.
   */
  constructor(options: LinearOptions) {
    super();
    const o = readOptions(options, LINEAR_KEYS, 'Linear options');
    this.inFeatures = readInteger(o.inFeatures, 'inFeatures', 1, 2 ** 31);
    this.outFeatures = readInteger(o.outFeatures, 'outFeatures', 1, 2 ** 31);
    parameterSize([this.outFeatures, this.inFeatures], 'the Linear weight');
    const init = linearInit(this.inFeatures, this.outFeatures, readBoolean(o.bias, 'bias', true), readSeed(o.seed, 'seed', randomSeed()));
    const device = resolveDevice((o.device ?? 'cpu') as DeviceSpec);
    this.weight = parameter(tensor(init.weight, [this.outFeatures, this.inFeatures], { device }));
    this.bias = init.bias ? parameter(tensor(init.bias, [this.outFeatures], { device })) : null;
  }

  protected run(x: Tensor, async: boolean): MaybePromise<Tensor> {
    const { weight, bias } = this;
    const recording = shouldRecord([x, weight, bias]);
    return then(linearForward(x, weight, bias, async), (y) => {
      if (recording) {
        record('Linear', [x, weight, bias], [y], (grads, ctx) => {
          const dweight = ctx.accumulateInto(1);
          const dbias = bias ? ctx.accumulateInto(2) : null;
          const into = dweight !== null && (bias === null || dbias !== null);
          const options = into ? { dweight, dbias, accumulate: true } : {};
          return then(linearBackward(x, grads[0] as Tensor, weight, bias, options, ctx.async), (g) =>
            [g.dx, into ? ACCUMULATED : g.dweight, bias ? (into ? ACCUMULATED : g.dbias) : null]);
        }, { saved: [x, weight, bias] });
      }
      return y;
    });
  }
}
