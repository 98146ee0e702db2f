/**
 * tanh, sigmoid and relu: y = f(x) elementwise, recorded for backward (dx = dy · f'(x), computed
 * from the saved output y). Native kernels of native/kernels/nn_elementwise.h, forward and
 * backward, through the per-device kernels of ../kernels.ts.
 */
import { Tensor, checkTensor } from '../../tensor';
import { record, shouldRecord } from '../engine';
import { ActivationKind, kernelsFor } from '../kernels';
import { MaybePromise, then } from '../maybe';

function activation(kind: ActivationKind, x: Tensor, async: boolean): MaybePromise<Tensor> {
  checkTensor(x, 'x');
  const recording = shouldRecord([x]);
  return then(kernelsFor(x.device).activation(kind, x, async), (y) => {
    if (recording) {
      record(kind, [x], [y], (grads, ctx) =>
        then(kernelsFor(y.device).activationBackward(kind, grads[0] as Tensor, y, ctx.async), (dx) => [dx]), { saved: [y] });
    }
    return y;
  });
}

/** tanh(x), off the event loop. */
export async function tanh(x: Tensor): Promise<Tensor> {
  return activation('tanh', x, true);
}

/** tanh(x) on the calling thread. */
export function tanhSync(x: Tensor): Tensor {
  return activation('tanh', x, false) as Tensor;
}

/** 1 / (1 + e^−x), off the event loop. */
export async function sigmoid(x: Tensor): Promise<Tensor> {
  return activation('sigmoid', x, true);
}

/** 1 / (1 + e^−x) on the calling thread. */
export function sigmoidSync(x: Tensor): Tensor {
  return activation('sigmoid', x, false) as Tensor;
}

/** max(x, 0) (NaN stays NaN; the gradient at 0 is 0), off the event loop. */
export async function relu(x: Tensor): Promise<Tensor> {
  return activation('relu', x, true);
}

/** max(x, 0) on the calling thread. */
export function reluSync(x: Tensor): Tensor {
  return activation('relu', x, false) as Tensor;
}
