/**
 * Tensor: float32, contiguous, row-major, on the CPU or a CUDA device.
 *
 * A CPU tensor wraps a Float32Array without copying it (`tensor(array, shape)` keeps the caller's
 * array). A CUDA tensor owns device memory through a native DeviceBuffer from the caching
 * allocator; `dispose()` returns it at once and the garbage collector is the safety net. Views made
 * by `reshape` or `detach` share storage with their base: disposing either disposes the storage of
 * both.
 *
 * Storage carries a version counter that every in-place write by the library bumps (optimizer
 * steps, clipping, loading a state dict, gradient accumulation): caches keyed on a tensor's
 * values (packed weights) and the autograd tape (a saved input modified before the backward)
 * compare it.
 *
 * Autograd (lib/nn/engine.ts): `requiresGrad`, `grad`, `backward()`, `detach()` and
 * `registerPostAccumulateGradHook()` are the tensor's side of the tape.
 *
 * Examples: [A first program](../README.md#a-first-program), [Tensors and devices](../README.md#tensors-and-devices).
 * @module
 */
import { RnnkitError } from './errors';
import { Device, DeviceSpec, deviceIndex, resolveDevice } from './device';
import {
  DeviceBuffer, allocateDevice, copyDeviceNew, download, downloadSync, native, sliceDevice, uploadNew,
} from './native';
import {
  FLOAT32_BYTES, allocFloats, argError, checkDeviceAllocation, copyGuarded, describe, isInstance, readFunction, readGuarded, readNumberList,
  readOptions, readShape,
} from './args';
import type { BackwardOptions, GradNode } from './nn/engine';

/** Options of `tensor`, `zeros`, `ones` and `full`. */
export interface TensorOptions {
  /** Where the tensor lives (default `'cpu'`). */
  device?: DeviceSpec;
}

/** Shared storage of a tensor and its views. */
interface Storage {
  data: Float32Array | null;
  buffer: DeviceBuffer | null;
  /** Device buffers over sub-ranges of `buffer` made for views at an offset, by "offset:size"; disposed with it. */
  slices: Map<string, DeviceBuffer> | null;
  disposed: boolean;
  /** Bumped by every in-place write the library makes. */
  version: number;
}

/** Runs right after `param.grad` was accumulated in a backward; may return a Promise. */
export type PostAccumulateGradHook = (param: Tensor) => unknown;

type Engine = typeof import('./nn/engine');
// Loaded on first use: the engine imports this module.
const engine = (): Engine => require('./nn/engine') as Engine;

/** The element count of a shape, checked (ERR_RNNKIT_SHAPE naming `what`). */
function checkShape(shape: readonly number[], what = 'shape'): number {
  return readShape(shape, what).size;
}

/** Only this module constructs tensors: the public ways are tensor(), zeros(), ones(), full(). */
const CONSTRUCT = Symbol('Tensor');

/** Whether `v` is a Tensor, without running a caller's Proxy traps (a Proxy is not one). @internal */
export function isTensor(v: unknown): v is Tensor {
  return isInstance(v, Tensor);
}

/**
 * A float32, contiguous, row-major array on the CPU or a CUDA device. CPU tensors wrap their
 * Float32Array without a copy; `dispose()` frees the storage at once, the garbage collector otherwise.
 */
export class Tensor {
  /** The size of each axis. */
  readonly shape: readonly number[];
  /** Where the tensor lives: `'cpu'` or `'cuda:N'`. */
  readonly device: Device;
  /** Number of elements. */
  readonly size: number;
  /** Always `'float32'`. */
  readonly dtype = 'float32' as const;
  /**
   * The gradient accumulated by `backward()` (null until the first one reaches this tensor, and
   * after `zeroGrad({ setToNone: true })`).
   */
  grad: Tensor | null = null;
  /** @internal The recorded operation that produced this tensor (null for leaves). */
  gradFn: GradNode | null = null;
  /** @internal Which output of `gradFn` this tensor is. */
  outputIndex = 0;
  /** @internal */
  postAccumulateGradHooks: PostAccumulateGradHook[] | null = null;
  private readonly storage: Storage;
  /** Element offset into the storage (CPU views of packed tensors). */
  private readonly offset: number;
  private viewData: Float32Array | null = null;
  private requiresGradFlag = false;

  /** @internal Use tensor(), zeros(), ones() or full(). */
  constructor(token: symbol, shape: readonly number[], device: Device, storage: Storage, offset = 0) {
    if (token !== CONSTRUCT) throw argError('Tensor has no public constructor: use tensor(), zeros(), ones() or full()');
    const { dims, size } = readShape(shape);
    this.shape = Object.freeze(dims);
    this.device = device;
    this.size = size;
    this.storage = storage;
    this.offset = offset;
  }

  /** @internal Wraps a Float32Array of exactly `shape`'s size (no copy). */
  static fromCpu(data: Float32Array, shape: readonly number[]): Tensor {
    const values = checkHostData(data, 'data');
    const size = checkShape(shape);
    if (values.length !== size) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `shape [${shape.join(', ')}] needs ${size} values, got ${values.length}`);
    }
    return new Tensor(CONSTRUCT, shape, 'cpu', { data: values, buffer: null, slices: null, disposed: false, version: 0 });
  }

  /** @internal Takes ownership of a device buffer of `shape`'s size on `device`. */
  static fromDevice(buffer: DeviceBuffer, device: Device, shape: readonly number[]): Tensor {
    const size = checkShape(shape);
    const index = typeof device === 'string' && /^cuda:\d+$/.test(device) ? deviceIndex(device) : -2;
    const ok = readGuarded(() => typeof buffer === 'object' && buffer !== null && !buffer.disposed &&
      buffer.device === index && buffer.bytes === size * FLOAT32_BYTES, 'buffer');
    if (!ok) throw argError(`fromDevice needs a live device buffer of ${size * FLOAT32_BYTES} bytes on ${describe(device)}`);
    return new Tensor(CONSTRUCT, shape, device, { data: null, buffer, slices: null, disposed: false, version: 0 });
  }

  /**
   * @internal A view of `shape` at element `offset` of `base`'s storage (the PyTorch-named blocks
   * of a packed recurrent weight tensor), on the CPU or a CUDA device: it shares the values, the
   * version counter and disposal with `base`. A CUDA view's `deviceBuffer` is a native slice of
   * the base's buffer (native/napi/device_buffer.h), made on first use and kept by the storage.
   */
  static view(base: Tensor, offset: number, shape: readonly number[]): Tensor {
    if (!isTensor(base)) throw argError(`view needs a base Tensor (got ${describe(base)})`);
    base.assertLive();
    const { dims, size } = readShape(shape);
    if (typeof offset !== 'number' || !Number.isSafeInteger(offset) || offset < 0 || offset + size > base.size) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `a view of ${size} values at ${describe(offset)} does not fit in ${base.size}`);
    }
    return new Tensor(CONSTRUCT, dims, base.device, base.storage, base.offset + offset);
  }

  /** True once `dispose()` was called on this tensor or a view sharing its storage. */
  get disposed(): boolean {
    return this.storage.disposed;
  }

  /** The number of axes. */
  get rank(): number {
    return this.shape.length;
  }

  /** The CPU tensor's own Float32Array (no copy): writes through it change the tensor. */
  get data(): Float32Array {
    this.assertLive();
    const all = this.storage.data;
    if (!all) {
      throw new RnnkitError('ERR_RNNKIT_DEVICE', `data is only on CPU tensors; this one is on ${this.device} (use read())`);
    }
    if (this.offset === 0 && this.size === all.length) return all;
    // The caller transferred (detached) the array under the tensor: no values are left to read.
    if (all.length < this.offset + this.size) {
      throw argError(`the tensor's Float32Array holds ${all.length} values, fewer than its ${this.size} (detached or transferred)`);
    }
    if (!this.viewData || this.viewData.length !== this.size) this.viewData = all.subarray(this.offset, this.offset + this.size);
    return this.viewData;
  }

  /** How many in-place writes the library has made to this tensor's storage. */
  get version(): number {
    return this.storage.version;
  }

  /** @internal Records an in-place write (call after writing). */
  bumpVersion(): void {
    this.storage.version++;
  }

  /** @internal Whether two tensors share storage (views of one another). */
  sharesStorage(other: Tensor): boolean {
    return isTensor(other) && this.storage === other.storage;
  }

  /**
   * Whether operations on this tensor are recorded for `backward()`. Settable on leaves (tensors
   * made by the caller or a module's parameters); results of recorded operations always require
   * gradients.
   */
  get requiresGrad(): boolean {
    return this.requiresGradFlag;
  }

  /** Records (or stops recording) operations on this leaf tensor; ERR_RNNKIT_ARG on a result. */
  set requiresGrad(on: boolean) {
    if (typeof on !== 'boolean') throw new RnnkitError('ERR_RNNKIT_ARG', 'requiresGrad must be a boolean');
    if (this.gradFn !== null) {
      throw new RnnkitError('ERR_RNNKIT_ARG', 'requiresGrad can only be set on leaf tensors (use detach() for a result of a recorded operation)');
    }
    this.requiresGradFlag = on;
  }

  /** True for tensors not produced by a recorded operation. */
  get isLeaf(): boolean {
    return this.gradFn === null;
  }

  /** @internal Marks this tensor as output `index` of a recorded operation. */
  setGradFn(node: GradNode, index: number): void {
    this.gradFn = node;
    this.outputIndex = index;
    this.requiresGradFlag = true;
  }

  /** A view of the same values cut off from the tape: it does not require gradients. */
  detach(): Tensor {
    this.assertLive();
    return new Tensor(CONSTRUCT, this.shape, this.device, this.storage, this.offset);
  }

  /**
   * Runs the recorded backward of everything this scalar was computed from, adding the
   * gradients into the `.grad` of every leaf that requires them; resolves after every
   * post-accumulate hook and every queued callback has settled. Off the event loop.
   */
  backward(options?: BackwardOptions): Promise<void> {
    return engine().runBackward(this, options);
  }

  /** `backward()` on the calling thread (hooks and callbacks must not return Promises). */
  backwardSync(options?: BackwardOptions): void {
    engine().runBackwardSync(this, options);
  }

  /**
   * Calls `fn(this)` right after this leaf's `.grad` was accumulated during a backward (once all
   * of that backward's contributions are in). `fn` may return a Promise, which `backward()` waits
   * for. Returns a function that removes the hook.
   */
  registerPostAccumulateGradHook(fn: PostAccumulateGradHook): () => void {
    readFunction(fn, 'registerPostAccumulateGradHook(fn): fn', '(param) => unknown');
    if (!this.isLeaf) throw new RnnkitError('ERR_RNNKIT_ARG', 'post-accumulate-grad hooks can only be registered on leaf tensors');
    const hooks = (this.postAccumulateGradHooks ??= []);
    const entry: PostAccumulateGradHook = (p) => fn(p);
    hooks.push(entry);
    return () => {
      const k = hooks.indexOf(entry);
      if (k >= 0) hooks.splice(k, 1);
    };
  }

  /** The value of a one-element tensor, as a number. */
  item(): number {
    this.assertLive();
    if (this.size !== 1) throw new RnnkitError('ERR_RNNKIT_SHAPE', `item() needs a one-element tensor, got [${this.shape.join(', ')}]`);
    return this.storage.data ? this.data[0] : this.readSync()[0];
  }

  /** @internal The device buffer of a CUDA tensor (for a view at an offset, a slice of its base's). */
  get deviceBuffer(): DeviceBuffer {
    this.assertLive();
    const whole = this.storage.buffer;
    if (!whole) throw new RnnkitError('ERR_RNNKIT_DEVICE', 'this tensor is on the CPU');
    if (this.offset === 0 && this.size * FLOAT32_BYTES === whole.bytes) return whole;
    const slices = (this.storage.slices ??= new Map());
    const key = `${this.offset}:${this.size}`;
    let slice = slices.get(key);
    if (!slice) {
      slice = sliceDevice(whole, this.offset, this.size);
      slices.set(key, slice);
    }
    return slice;
  }

  /** A view with another shape of the same size, sharing storage (recorded for autograd). */
  reshape(shape: readonly number[]): Tensor {
    this.assertLive();
    const { dims, size } = readShape(shape);
    if (size !== this.size) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `cannot reshape [${this.shape.join(', ')}] to [${dims.join(', ')}]`);
    }
    return this.recorded('reshape', new Tensor(CONSTRUCT, dims, this.device, this.storage, this.offset));
  }

  /** A copy on `device` (this tensor itself when it is already there; recorded for autograd). */
  to(device: DeviceSpec): Tensor {
    this.assertLive();
    const target = resolveDevice(device);
    if (target === this.device) return this;
    const host = this.readSync();
    const moved = target === 'cpu' ? Tensor.fromCpu(host, this.shape) : uploadSync(host, this.shape, target);
    return this.recorded('to', moved);
  }

  /** A copy of the values, as a new Float32Array, without blocking the event loop. */
  async read(): Promise<Float32Array> {
    this.assertLive();
    if (this.storage.data) return this.copyData();
    const out = allocFloats(this.size, 'the host copy', 'read');
    await download(this.deviceBuffer, out);
    return out;
  }

  /** A copy of the values, as a new Float32Array. */
  readSync(): Float32Array {
    this.assertLive();
    if (this.storage.data) return this.copyData();
    const out = allocFloats(this.size, 'the host copy', 'readSync');
    downloadSync(this.deviceBuffer, out);
    return out;
  }

  /** A deep copy on the same device (recorded for autograd). */
  clone(): Tensor {
    this.assertLive();
    if (this.storage.data) return this.recorded('clone', Tensor.fromCpu(this.copyData(), this.shape));
    checkDeviceAllocation('clone', deviceIndex(this.device), [{ what: 'the copy', floats: this.size }]);
    return this.recorded('clone', Tensor.fromDevice(copyDeviceNew(this.deviceBuffer), this.device, this.shape));
  }

  // A reshape, copy or move of a tensor that requires gradients passes them back unchanged.
  private recorded(name: string, out: Tensor): Tensor {
    if (this.requiresGradFlag) engine().recordIdentity(name, this, out);
    return out;
  }

  /** Releases the storage now (device memory goes back to the cache). Idempotent. */
  dispose(): void {
    if (this.storage.disposed) return;
    this.storage.disposed = true;
    this.storage.data = null;
    this.storage.slices?.forEach((b) => b.dispose());
    this.storage.slices = null;
    if (this.storage.buffer) {
      this.storage.buffer.dispose();
      this.storage.buffer = null;
    }
  }

  /** `dispose()`, so that `using t = tensor(...)` frees the tensor at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Throws ERR_RNNKIT_DISPOSED when the tensor was disposed. */
  assertLive(what = 'tensor'): void {
    if (this.storage.disposed) throw new RnnkitError('ERR_RNNKIT_DISPOSED', `${what} has been disposed`);
  }

  /** `Tensor(float32, [shape], device)`, with `disposed` when it is. */
  toString(): string {
    return `Tensor(float32, [${this.shape.join(', ')}], ${this.device}${this.disposed ? ', disposed' : ''})`;
  }

  /** A copy of a CPU tensor's values. */
  private copyData(): Float32Array {
    const data = this.data;
    return copyGuarded(() => data.slice(), 'the tensor');
  }
}

/**
 * The caller's Float32Array for a CPU tensor, kept as it is: not a Proxy, and not on a resizable
 * ArrayBuffer (shrinking one would pull memory from under a kernel).
 */
function checkHostData(data: unknown, what: string): Float32Array {
  if (!isInstance(data, Float32Array)) {
    throw new RnnkitError('ERR_RNNKIT_DTYPE', `${what} must be a Float32Array (got ${describe(data)})`);
  }
  const buffer = data.buffer as ArrayBuffer & { resizable?: boolean };
  if (buffer.resizable === true) throw argError(`${what} is on a resizable ArrayBuffer; copy it to a fixed one first`);
  return data;
}

function uploadSync(host: Float32Array, shape: readonly number[], device: Device): Tensor {
  checkDeviceAllocation('upload', deviceIndex(device), [{ what: `a tensor [${shape.join(', ')}]`, floats: host.length }]);
  return Tensor.fromDevice(uploadNew(deviceIndex(device), host), device, shape);
}

/** @internal A new, uninitialized tensor on a CUDA device. */
export function deviceTensor(device: Device, shape: readonly number[]): Tensor {
  const size = checkShape(shape);
  checkDeviceAllocation('a device tensor', deviceIndex(device), [{ what: `a tensor [${shape.join(', ')}]`, floats: size }]);
  return Tensor.fromDevice(allocateDevice(deviceIndex(device), size), device, shape);
}

const TENSOR_OPTIONS = ['device'] as const;

/** @internal The device of `{ device }` options (default the CPU); unknown keys are refused. */
export function optionsDevice(options: unknown): Device {
  const o = readOptions(options, TENSOR_OPTIONS, 'tensor options');
  return resolveDevice(o.device === undefined ? 'cpu' : (o.device as DeviceSpec));
}

function toFloat32(data: unknown): Float32Array {
  if (isInstance(data, Float32Array)) return checkHostData(data, 'tensor data');
  if (readGuarded(() => Array.isArray(data), 'tensor data')) {
    return readNumberList(data, 'tensor data', (n) => allocFloats(n, 'the values', 'tensor'));
  }
  throw new RnnkitError('ERR_RNNKIT_DTYPE', `tensor data must be a Float32Array or number[] (got ${describe(data)})`);
}

/**
 * A tensor from values. On the CPU a Float32Array is kept as it is (no copy); number[] is
 * converted. `shape` defaults to `[data.length]`.
 */
export function tensor(data: Float32Array | number[], shape?: readonly number[], options?: TensorOptions): Tensor {
  const values = toFloat32(data);
  const s = shape === undefined ? { dims: [values.length], size: values.length } : readShape(shape);
  if (s.size !== values.length) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `shape [${s.dims.join(', ')}] needs ${s.size} values, got ${values.length}`);
  }
  const device = optionsDevice(options);
  if (device === 'cpu') return Tensor.fromCpu(values, s.dims);
  return uploadSync(values, s.dims, device);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], options?: TensorOptions): Tensor {
  return filled('zeros', shape, 0, options);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], options?: TensorOptions): Tensor {
  return filled('ones', shape, 1, options);
}

/** A tensor filled with one value (on a CUDA device it is filled there, with no host copy). */
export function full(shape: readonly number[], value: number, options?: TensorOptions): Tensor {
  if (typeof value !== 'number') throw new RnnkitError('ERR_RNNKIT_ARG', `full: value must be a number (got ${describe(value)})`);
  return filled('full', shape, value, options);
}

function filled(call: string, shape: readonly number[], value: number, options: TensorOptions | undefined): Tensor {
  const { dims, size } = readShape(shape);
  const device = optionsDevice(options);
  const what = `a tensor [${dims.join(', ')}]`;
  if (device === 'cpu') {
    const data = allocFloats(size, what, call);
    if (value !== 0) data.fill(value);
    return Tensor.fromCpu(data, dims);
  }
  checkDeviceAllocation(call, deviceIndex(device), [{ what, floats: size }]);
  const t = deviceTensor(device, dims);
  try {
    native().cudaFill(t.deviceBuffer, value, false);
  } catch (err) {
    t.dispose();
    throw err;
  }
  return t;
}

/** @internal A tensor to be overwritten: uninitialized device memory, or zeros on the CPU. */
export function emptyTensor(shape: readonly number[], device: Device): Tensor {
  return device === 'cpu' ? Tensor.fromCpu(allocFloats(checkShape(shape), `a tensor [${shape.join(', ')}]`), shape) : deviceTensor(device, shape);
}

/** @internal Checks a tensor argument of an op: a live Tensor, optionally of a given rank. */
export function checkTensor(t: unknown, what: string, rank?: number): Tensor {
  if (!isTensor(t)) throw new RnnkitError('ERR_RNNKIT_ARG', `${what} must be a Tensor (got ${describe(t)})`);
  t.assertLive(what);
  if (rank !== undefined && t.rank !== rank) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must have rank ${rank}, got shape [${t.shape.join(', ')}]`);
  }
  return t;
}
