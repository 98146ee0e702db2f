/**
 * crossEntropy and mseLoss as scalar tensors recorded for backward, on the loss kernels of
 * lib/train/losses.ts (native/kernels/train.h, and their CUDA twins), which compute the loss and
 * its gradient in one pass; the gradient is kept for the backward only when the call is recorded,
 * and scaled there by the incoming gradient (1 for `loss.backward()`: no pass at all). The scalar
 * is made on the inputs' device, so on CUDA neither the loss nor the implicit gradient 1 crosses
 * to the host.
 */
import { Tensor, checkTensor } from '../../tensor';
import type { IndexTensor } from '../../index-tensor';
import { CrossEntropyOptions, MseOptions, crossEntropyOnDevice, mseLossOnDevice } from '../../train/losses';
import { BackwardContext, InputGrad, isUnitSeed, record, shouldRecord } from '../engine';
import { kernelsFor } from '../kernels';
import { MaybePromise, then } from '../maybe';
import { readOptions } from '../../args';

/** Options of nn.crossEntropy. */
export type NnCrossEntropyOptions = Omit<CrossEntropyOptions, 'grad'>;
/** Options of nn.mseLoss. */
export type NnMseOptions = Omit<MseOptions, 'grad'>;

/** g·saved, without a pass when g is 1 and the graph is not kept (the saved gradient is handed on). */
function scaled(saved: Tensor, g: Tensor, factor: number, ctx: BackwardContext): MaybePromise<Tensor> {
  const f = (isUnitSeed(g) ? 1 : g.item()) * factor;
  return f === 1 && !ctx.retain ? saved : kernelsFor(saved.device).affine(saved, f, 0, ctx.async);
}

function crossEntropyOf(logits: Tensor, targets: Int32Array | IndexTensor, options: NnCrossEntropyOptions | undefined, async: boolean): MaybePromise<Tensor> {
  checkTensor(logits, 'logits');
  const o = readOptions(options, ['mask', 'ignoreIndex', 'reduction'], 'crossEntropy options') as NnCrossEntropyOptions;
  const recording = shouldRecord([logits]);
  const opts = { ...o, grad: recording };
  return then(crossEntropyOnDevice(logits, targets, opts, async), ({ loss: out, grad: dlogits }) => {
    if (recording) record('crossEntropy', [logits], [out], (grads, ctx) => then(scaled(dlogits as Tensor, grads[0] as Tensor, 1, ctx), (d) => [d]));
    return out;
  });
}

/**
 * Softmax cross-entropy of logits [N, V] or [T, B, V] against targets (an Int32Array, or an IndexTensor: on the logits'
 * device it is not copied), as a scalar tensor, off the event loop.
 */
export async function crossEntropy(logits: Tensor, targets: Int32Array | IndexTensor, options?: NnCrossEntropyOptions): Promise<Tensor> {
  return crossEntropyOf(logits, targets, options, true);
}

/** `crossEntropy` on the calling thread. */
export function crossEntropySync(logits: Tensor, targets: Int32Array | IndexTensor, options?: NnCrossEntropyOptions): Tensor {
  return crossEntropyOf(logits, targets, options, false) as Tensor;
}

function mseOf(input: Tensor, target: Tensor, options: NnMseOptions | undefined, async: boolean): MaybePromise<Tensor> {
  checkTensor(input, 'input');
  checkTensor(target, 'target');
  const o = readOptions(options, ['reduction'], 'mseLoss options') as NnMseOptions;
  const recording = shouldRecord([input, target]);
  const opts = { ...o, grad: recording };
  return then(mseLossOnDevice(input, target, opts, async), ({ loss: out, grad: dinput }) => {
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
