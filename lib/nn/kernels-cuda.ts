/**
 * The CUDA kernels of lib/nn (native/napi/cuda_nn_ops.cc over cuda/nn.cu), registered for every
 * CUDA device: each method of NnKernels runs on the device of its first tensor with no host copy
 * (an Embedding's host ids are uploaded by the call; an IndexTensor's are on the device). Results are those of the CPU set bit
 * for bit, except tanh and sigmoid (CUDA's tanhf / expf, within a few ulp; cuda/cuda_nn.h).
 * A tensor argument on another device is copied over first (a counted copy).
 */
import { Device } from '../device';
import { DeviceBuffer, native } from '../native';
import { Tensor, deviceTensor } from '../tensor';
import { ACTIVATION_CODES, Done, NnKernels, after, registerNnKernels, written } from './kernels';
import { MaybePromise, then } from './maybe';

/** t's buffer on `device` (a copy made there when t is elsewhere). */
function on(t: Tensor, device: Device): DeviceBuffer {
  return (t.device === device ? t : t.to(device)).deviceBuffer;
}

/** `n` device copies of [outer, cols_k] blocks into or out of one [outer, total] tensor. */
function copyBlocks(calls: Done[], async: boolean): MaybePromise<void> {
  return async ? Promise.all(calls).then(() => undefined) : undefined;
}

export const cudaKernels: NnKernels = {
  activation(kind, x, async) {
    const y = deviceTensor(x.device, x.shape);
    return after(native().cudaNnActivationForward(ACTIVATION_CODES[kind], x.deviceBuffer, y.deviceBuffer, async), y);
  },
  activationBackward(kind, dy, y, async) {
    const dx = deviceTensor(dy.device, y.shape);
    return after(native().cudaNnActivationBackward(ACTIVATION_CODES[kind], dy.deviceBuffer, on(y, dy.device), dx.deviceBuffer,
      async), dx);
  },
  broadcast(op, a, b, rows, async) {
    const out = deviceTensor(a.device, a.shape);
    return after(native().cudaNnBroadcastBinary(op === 'mul' ? 1 : 0, a.deviceBuffer, on(b, a.device), out.deviceBuffer, rows,
      b.size, async), out);
  },
  affine(x, scale, shift, async) {
    const out = deviceTensor(x.device, x.shape);
    return after(native().cudaNnAffine(x.deviceBuffer, out.deviceBuffer, scale, shift, async), out);
  },
  accumulate(y, x, async) {
    return then(native().cudaNnAccumulate(y.deviceBuffer, on(x, y.device), async), () => {
      y.bumpVersion();
    });
  },
  dropout(backward, input, p, seed, async) {
    const out = deviceTensor(input.device, input.shape);
    return after(native().cudaNnDropout(backward, input.deviceBuffer, out.deviceBuffer, p, seed, async), out);
  },
  sumAxis(x, w, outer, len, inner, scale, into, shape, async) {
    const out = into ?? deviceTensor(x.device, shape);
    const done = native().cudaNnSumAxis(x.deviceBuffer, w ? on(w, x.device) : null, on(out, x.device), outer, len, inner, scale,
      into !== null, async);
    return then(done, () => (into ? written(into) : out));
  },
  broadcastAxis(dy, outer, len, inner, scale, shape, async) {
    const dx = deviceTensor(dy.device, shape);
    return after(native().cudaNnBroadcastAxis(dy.deviceBuffer, dx.deviceBuffer, outer, len, inner, scale, async), dx);
  },
  embedding(weight, ids, shape, async) {
    const out = deviceTensor(weight.device, shape);
    return after(native().cudaNnEmbeddingForward(weight.deviceBuffer, ids, out.deviceBuffer, weight.shape[0], weight.shape[1],
      async), out);
  },
  embeddingBackward(dy, ids, weightShape, paddingIdx, into, async) {
    const out = into ?? deviceTensor(dy.device, weightShape);
    const done = native().cudaNnEmbeddingBackward(dy.deviceBuffer, ids, on(out, dy.device), weightShape[0], weightShape[1],
      paddingIdx, into !== null, async);
    return then(done, () => (into ? written(into) : out));
  },
  concat(parts, outer, shape, async) {
    const device = parts[0].device;
    const out = deviceTensor(device, shape);
    const total = out.size / Math.max(outer, 1);
    let at = 0;
    const calls = parts.map((p) => {
      const cols = outer === 0 ? 0 : p.size / outer;
      const call = native().cudaNnCopyBlock(on(p, device), 0, cols, out.deviceBuffer, at, total, outer, cols, async);
      at += cols;
      return call;
    });
    return then(copyBlocks(calls, async), () => out);
  },
  split(x, outer, shapes, async) {
    const total = outer === 0 ? 0 : x.size / outer;
    let at = 0;
    const calls: Done[] = [];
    const outs = shapes.map((shape) => {
      const t = deviceTensor(x.device, shape);
      const cols = outer === 0 ? 0 : t.size / outer;
      calls.push(native().cudaNnCopyBlock(x.deviceBuffer, at, total, t.deviceBuffer, 0, cols, outer, cols, async));
      at += cols;
      return t;
    });
    return then(copyBlocks(calls, async), () => outs);
  },
  fill(t, value) {
    native().cudaFill(t.deviceBuffer, value, false);
    t.bumpVersion();
  },
};

registerNnKernels('cuda', cudaKernels);
