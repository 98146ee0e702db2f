/**
 * crossEntropy and mseLoss as scalar tensors recorded for backward, on the loss kernels of
 * lib/train/losses.ts (native/kernels/train.h), which compute the loss and its gradient in one
 * pass; the gradient is kept for the backward only when the call is recorded, and scaled there by
 * the incoming gradient (1 for `loss.backward()`: no pass at all).
 */
import { Tensor, checkTensor } from '../../tensor';
import { CrossEntropyOptions, MseOptions, crossEntropy as ceLoss, crossEntropySync as ceLossSync, mseLoss as mse, mseLossSync as mseSync } from '../../train/losses';
import { BackwardContext, InputGrad, record, shouldRecord } from '../engine';
import { kernelsFor } from '../kernels';
import { MaybePromise, then } from '../maybe';
import { readOptions } from '../../args';

/** Options of nn.crossEntropy. */
export type NnCrossEntropyOptions = Omit<CrossEntropyOptions, 'grad'>;
/** Options of nn.mseLoss. */
export type NnMseOptions = Omit<MseOptions, 'grad'>;

function scalar(value: number, like: Tensor): Tensor {
  const t = Tensor.fromCpu(new Float32Array([value]), []);
  return like.device === 'cpu' ? t : t.to(like.device);
}

/** g·saved, without a pass when g is 1 and the graph is not kept (the saved gradient is handed on). */
function scaled(saved: Tensor, g: Tensor, factor: number, ctx: BackwardContext): MaybePromise<Tensor> {
  const f = g.item() * factor;
  return f === 1 && !ctx.retain ? saved : kernelsFor(saved.device).affine(saved, f, 0, ctx.async);
}

function crossEntropyOf(logits: Tensor, targets: Int32Array, options: NnCrossEntropyOptions | undefined, async: boolean): MaybePromise<Tensor> {
  checkTensor(logits, 'logits');
  const o = readOptions(options, ['mask', 'ignoreIndex', 'reduction'], 'crossEntropy options') as NnCrossEntropyOptions;
  const recording = shouldRecord([logits]);
  const opts = { ...o, grad: recording };
  const result = async ? ceLoss(logits, targets, opts) : ceLossSync(logits, targets, opts);
  return then(result, ({ loss, dlogits }) => {
    const out = scalar(loss, logits);
    if (recording) record('crossEntropy', [logits], [out], (grads, ctx) => then(scaled(dlogits as Tensor, grads[0] as Tensor, 1, ctx), (d) => [d]));
    return out;
  });
}

/** Softmax cross-entropy of logits [N, V] or [T, B, V] against Int32Array targets, as a scalar tensor, off the event loop. */
export async function crossEntropy(logits: Tensor, targets: Int32Array, options?: NnCrossEntropyOptions): Promise<Tensor> {
  return crossEntropyOf(logits, targets, options, true);
}

/** `crossEntropy` on the calling thread. */
export function crossEntropySync(logits: Tensor, targets: Int32Array, options?: NnCrossEntropyOptions): Tensor {
  return crossEntropyOf(logits, targets, options, false) as Tensor;
}

function mseOf(input: Tensor, target: Tensor, options: NnMseOptions | undefined, async: boolean): MaybePromise<Tensor> {
  checkTensor(input, 'input');
  checkTensor(target, 'target');
  const o = readOptions(options, ['reduction'], 'mseLoss options') as NnMseOptions;
  const recording = shouldRecord([input, target]);
  const opts = { ...o, grad: recording };
  const result = async ? mse(input, target, opts) : mseSync(input, target, opts);
  return then(result, ({ loss, dinput }) => {
    const out = scalar(loss, input);
    if (recording) {
      record('mseLoss', [input, target], [out], (grads, ctx) => {
        const d = dinput as Tensor;
        const g = grads[0] as Tensor;
        const forInput = ctx.needs[0] ? scaled(d, g, 1, ctx) : null;
        const forTarget = ctx.needs[1] ? scaled(d, g, -1, ctx) : null;
        return then(forInput, (a) => then(forTarget, (b): InputGrad[] => [a, b]));
      });
    }
    return out;
  });
}

/** Mean squared error (or the sum with reduction 'sum') as a scalar tensor, off the event loop. */
export async function mseLoss(input: Tensor, target: Tensor, options?: NnMseOptions): Promise<Tensor> {
  return mseOf(input, target, options, true);
}

/** `mseLoss` on the calling thread. */
export function mseLossSync(input: Tensor, target: Tensor, options?: NnMseOptions): Tensor {
  return mseOf(input, target, options, false) as Tensor;
}
