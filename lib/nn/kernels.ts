/**
 * The per-device kernels of lib/nn: the one place where a function or module meets native code.
 *
 * Every nn function and module calls `kernelsFor(device)` and then one of the methods below. The
 * CPU set runs the kernels of native/kernels/nn_elementwise.h, nn_reduce.h and gather.h through
 * native/napi/nn_ops.cc. The CUDA set (kernels-cuda.ts, every method) plugs in with
 * `registerNnKernels('cuda', kernels)`; a method a set lacks, or every method when none is
 * registered, runs on the CPU with the tensors copied over and the results copied back (correct,
 * but two host copies).
 * Losses, Linear's GEMMs, RMSNorm and the recurrent modules run the ops of lib/train, lib/matmul,
 * lib/rmsnorm and lib/recurrent, which have device paths of their own.
 *
 * Contract of each method: outputs are new tensors on the inputs' device unless an `into` tensor
 * is given (then it is added into and returned); no method reads an output before writing it.
 */
import { allocFloats } from '../args';
import { RnnkitError } from '../errors';
import { Device } from '../device';
import { DeviceBuffer, native, uploadSync } from '../native';
import { hostIds } from '../index-tensor';
import { Tensor } from '../tensor';
import { MaybePromise, then } from './maybe';

/** The activations with a native kernel. */
export type ActivationKind = 'tanh' | 'sigmoid' | 'relu';

/** Embedding ids as a kernel takes them: a host Int32Array or a device buffer of int32. */
export type Ids = Int32Array | DeviceBuffer;

/** What a device offers the nn layer (see the contract at the top of this file). */
export interface NnKernels {
  /** y = f(x). */
  activation(kind: ActivationKind, x: Tensor, async: boolean): MaybePromise<Tensor>;
  /** dx = dy · f'(x), from the forward's output y. */
  activationBackward(kind: ActivationKind, dy: Tensor, y: Tensor, async: boolean): MaybePromise<Tensor>;
  /** out = a op b with b (m = b.size values) repeated over the rows of a (a.size = rows·m); shaped like a. */
  broadcast(op: 'add' | 'mul', a: Tensor, b: Tensor, rows: number, async: boolean): MaybePromise<Tensor>;
  /** out = x·scale + shift. */
  affine(x: Tensor, scale: number, shift: number, async: boolean): MaybePromise<Tensor>;
  /** y += x, in place (same size). */
  accumulate(y: Tensor, x: Tensor, async: boolean): MaybePromise<void>;
  /** Inverted dropout with the counter-based mask of `seed` (backward: the same mask on dy). */
  dropout(backward: boolean, input: Tensor, p: number, seed: number, async: boolean): MaybePromise<Tensor>;
  /**
   * Σ over the middle axis of x viewed [outer, len, inner] (of x·w when w is given), times scale;
   * added into `into`, or a new tensor of `shape` (outer·inner values).
   */
  sumAxis(x: Tensor, w: Tensor | null, outer: number, len: number, inner: number, scale: number,
    into: Tensor | null, shape: readonly number[], async: boolean): MaybePromise<Tensor>;
  /** dx [outer, len, inner] = scale · dy [outer, inner] repeated over the middle axis, of `shape`. */
  broadcastAxis(dy: Tensor, outer: number, len: number, inner: number, scale: number, shape: readonly number[],
    async: boolean): MaybePromise<Tensor>;
  /**
   * Rows `ids` of weight [V, D], shaped `shape` (n·D values for n ids): host ids, or int32 ids in a
   * buffer on weight's device (an IndexTensor's, already checked).
   */
  embedding(weight: Tensor, ids: Ids, shape: readonly number[], async: boolean): MaybePromise<Tensor>;
  /** The dense gradient [V, D] of an embedding lookup (rows at paddingIdx skipped; -1: none), added into `into`. */
  embeddingBackward(dy: Tensor, ids: Ids, weightShape: readonly number[], paddingIdx: number,
    into: Tensor | null, async: boolean): MaybePromise<Tensor>;
  /** parts[k] viewed [outer, cols_k] side by side: a new [outer, Σ cols_k] tensor of `shape`. */
  concat(parts: readonly Tensor[], outer: number, shape: readonly number[], async: boolean): MaybePromise<Tensor>;
  /** The inverse of concat: x [outer, Σ cols_k] cut into tensors of `shapes`. */
  split(x: Tensor, outer: number, shapes: ReadonlyArray<readonly number[]>, async: boolean): MaybePromise<Tensor[]>;
  /** Sets every element to `value`, in place (e.g. zeroing gradients). */
  fill(t: Tensor, value: number): void;
}

/** @internal What a native call without a value returns. */
export type Done = Promise<void> | undefined;

/** @internal The binding's code of each activation. */
export const ACTIVATION_CODES: Record<ActivationKind, number> = { tanh: 0, sigmoid: 1, relu: 2 };

const fresh = (shape: readonly number[]): Tensor =>
  Tensor.fromCpu(allocFloats(shape.reduce((a, b) => a * b, 1), `a result [${shape.join(', ')}]`), shape);

/** @internal Continues after a native call (sync: undefined, async: a Promise) with `out`. */
export function after<T>(done: Done, out: T): MaybePromise<T> {
  return done === undefined ? out : done.then(() => out);
}

/** @internal `t` after an in-place write, its version bumped. */
export function written(t: Tensor): Tensor {
  t.bumpVersion();
  return t;
}

/** The CPU kernels. */
export const cpuKernels: NnKernels = {
  activation(kind, x, async) {
    const y = fresh(x.shape);
    return after(native().nnActivationForward(ACTIVATION_CODES[kind], x.data, y.data, async), y);
  },
  activationBackward(kind, dy, y, async) {
    const dx = fresh(y.shape);
    return after(native().nnActivationBackward(ACTIVATION_CODES[kind], dy.data, y.data, dx.data, async), dx);
  },
  broadcast(op, a, b, rows, async) {
    const out = fresh(a.shape);
    return after(native().nnBroadcastBinary(op === 'mul' ? 1 : 0, a.data, b.data, out.data, rows, b.size, async), out);
  },
  affine(x, scale, shift, async) {
    const out = fresh(x.shape);
    return after(native().nnAffine(x.data, out.data, scale, shift, async), out);
  },
  accumulate(y, x, async) {
    return then(native().nnAccumulate(y.data, x.data, async), () => {
      y.bumpVersion();
    });
  },
  dropout(backward, input, p, seed, async) {
    const out = fresh(input.shape);
    return after(native().nnDropout(backward, input.data, out.data, p, seed, async), out);
  },
  sumAxis(x, w, outer, len, inner, scale, into, shape, async) {
    const out = into ?? fresh(shape);
    const done = native().nnSumAxis(x.data, w ? w.data : null, out.data, outer, len, inner, scale, into !== null, async);
    return then(done, () => (into ? written(into) : out));
  },
  broadcastAxis(dy, outer, len, inner, scale, shape, async) {
    const dx = fresh(shape);
    return after(native().nnBroadcastAxis(dy.data, dx.data, outer, len, inner, scale, async), dx);
  },
  embedding(weight, ids, shape, async) {
    const out = fresh(shape);
    return after(native().nnEmbeddingForward(weight.data, hostIds(ids, 'ids'), out.data, weight.shape[0], weight.shape[1], async), out);
  },
  embeddingBackward(dy, ids, weightShape, paddingIdx, into, async) {
    const out = into ?? fresh(weightShape);
    const done = native().nnEmbeddingBackward(dy.data, hostIds(ids, 'ids'), out.data, weightShape[0], weightShape[1], paddingIdx,
      into !== null, async);
    return then(done, () => (into ? written(into) : out));
  },
  concat(parts, outer, shape, async) {
    const out = fresh(shape);
    const total = out.size / Math.max(outer, 1);
    let at = 0;
    const calls: Done[] = [];
    for (const p of parts) {
      const cols = outer === 0 ? 0 : p.size / outer;
      calls.push(native().nnCopyBlock(p.data, 0, cols, out.data, at, total, outer, cols, async));
      at += cols;
    }
    return async ? Promise.all(calls).then(() => out) : out;
  },
  split(x, outer, shapes, async) {
    const total = outer === 0 ? 0 : x.size / outer;
    let at = 0;
    const calls: Done[] = [];
    const outs = shapes.map((shape) => {
      const t = fresh(shape);
      const cols = outer === 0 ? 0 : t.size / outer;
      calls.push(native().nnCopyBlock(x.data, at, total, t.data, 0, cols, outer, cols, async));
      at += cols;
      return t;
    });
    return async ? Promise.all(calls).then(() => outs) : outs;
  },
  fill(t, value) {
    t.data.fill(value);
    t.bumpVersion();
  },
};

/** For each method, the argument it writes into (added into the device tensor after a host run). */
const WRITTEN_ARG: Partial<Record<keyof NnKernels, number>> = { accumulate: 0, sumAxis: 6, embeddingBackward: 4, fill: 0 };

const hostCopy = (t: Tensor): Tensor => Tensor.fromCpu(t.readSync(), t.shape);

function toDevice<T>(value: T, device: Device): T {
  if (value instanceof Tensor) return (value.device === device ? value : value.to(device)) as T;
  if (Array.isArray(value)) return value.map((v) => toDevice(v, device)) as T;
  return value;
}

/** The CPU kernels on copies of device tensors, results copied back (no kernel for `device` yet). */
function hostFallback(device: Device, own: Partial<NnKernels>): NnKernels {
  const out: NnKernels = { ...cpuKernels, ...own };
  for (const name of Object.keys(cpuKernels) as Array<keyof NnKernels>) {
    if (own[name]) continue;
    const cpu = cpuKernels[name] as (...args: unknown[]) => unknown;
    const writtenArg = WRITTEN_ARG[name];
    const viaHost = (...args: unknown[]): unknown => {
      const hostArgs = args.map((a) => (a instanceof Tensor && a.device !== 'cpu' ? hostCopy(a)
        : Array.isArray(a) && a.every((e) => e instanceof Tensor) ? a.map((e: Tensor) => (e.device === 'cpu' ? e : hostCopy(e))) : a));
      const finish = (result: unknown): unknown => {
        if (writtenArg !== undefined) {
          const target = args[writtenArg];
          if (target instanceof Tensor && target.device !== 'cpu') {
            uploadSync(target.deviceBuffer, (hostArgs[writtenArg] as Tensor).data);
            target.bumpVersion();
            return target;
          }
        }
        return toDevice(result, device);
      };
      return then(cpu(...hostArgs) as MaybePromise<unknown>, finish);
    };
    Object.assign(out, { [name]: viaHost });
  }
  return out;
}

const registered = new Map<string, Partial<NnKernels>>();
const fallbacks = new Map<Device, NnKernels>();

/**
 * @internal Registers the kernels of a device family ('cuda'): the CUDA engineer's plug-in point.
 * Methods left out keep running on the CPU through host copies.
 */
export function registerNnKernels(family: 'cuda', kernels: Partial<NnKernels>): void {
  if (family !== 'cuda') throw new RnnkitError('ERR_RNNKIT_ARG', `no device family '${String(family)}'`);
  registered.set(family, kernels);
  fallbacks.clear();
}

/** The kernels that run for tensors on `device`. */
export function kernelsFor(device: Device): NnKernels {
  if (device === 'cpu') return cpuKernels;
  let k = fallbacks.get(device);
  if (!k) {
    k = hostFallback(device, registered.get('cuda') ?? {});
    fallbacks.set(device, k);
  }
  return k;
}
