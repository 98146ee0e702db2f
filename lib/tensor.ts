/**
 * Tensor: float32, contiguous, row-major, on the CPU or a CUDA device.
 *
 * A CPU tensor wraps a Float32Array without copying it (`tensor(array, shape)` keeps the caller's
 * array). A CUDA tensor owns device memory through a native DeviceBuffer from the caching
 * allocator; `dispose()` returns it at once and the garbage collector is the safety net. Views made
 * by `reshape` share storage with their base: disposing either disposes the storage of both.
 */
import { types } from 'util';
import { RnnkitError } from './errors';
import { Device, DeviceSpec, deviceIndex, resolveDevice } from './device';
import {
  DeviceBuffer, allocateDevice, copyDeviceNew, download, downloadSync, uploadNew,
} from './native';
import {
  FLOAT32_BYTES, allocFloats, argError, checkDeviceAllocation, copyGuarded, describe, isInstance, readGuarded, readOptions, readShape,
} from './args';

export interface TensorOptions {
  device?: DeviceSpec;
}

/** Shared storage of a tensor and its views. */
interface Storage {
  data: Float32Array | null;
  buffer: DeviceBuffer | null;
  disposed: boolean;
}

/** The element count of a shape, checked (ERR_RNNKIT_SHAPE naming `what`). */
function checkShape(shape: readonly number[], what = 'shape'): number {
  return readShape(shape, what).size;
}

/** Only this module constructs tensors: the public ways are tensor(), zeros(), ones(), full(). */
const CONSTRUCT = Symbol('Tensor');

/** Whether `v` is a Tensor, without running a caller's Proxy traps (a Proxy is not one). */
export function isTensor(v: unknown): v is Tensor {
  return isInstance(v, Tensor);
}

export class Tensor {
  readonly shape: readonly number[];
  readonly device: Device;
  /** Number of elements. */
  readonly size: number;
  readonly dtype = 'float32' as const;
  private readonly storage: Storage;

  /** @internal Use tensor(), zeros(), ones() or full(). */
  constructor(token: symbol, shape: readonly number[], device: Device, storage: Storage) {
    if (token !== CONSTRUCT) throw argError('Tensor has no public constructor: use tensor(), zeros(), ones() or full()');
    const { dims, size } = readShape(shape);
    this.shape = Object.freeze(dims);
    this.device = device;
    this.size = size;
    this.storage = storage;
  }

  /** @internal Wraps a Float32Array of exactly `shape`'s size (no copy). */
  static fromCpu(data: Float32Array, shape: readonly number[]): Tensor {
    const values = checkHostData(data, 'data');
    const size = checkShape(shape);
    if (values.length !== size) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `shape [${shape.join(', ')}] needs ${size} values, got ${values.length}`);
    }
    return new Tensor(CONSTRUCT, shape, 'cpu', { data: values, buffer: null, disposed: false });
  }

  /** @internal Takes ownership of a device buffer of `shape`'s size on `device`. */
  static fromDevice(buffer: DeviceBuffer, device: Device, shape: readonly number[]): Tensor {
    const size = checkShape(shape);
    const index = typeof device === 'string' && /^cuda:\d+$/.test(device) ? deviceIndex(device) : -2;
    const ok = readGuarded(() => typeof buffer === 'object' && buffer !== null && !buffer.disposed &&
      buffer.device === index && buffer.bytes === size * FLOAT32_BYTES, 'buffer');
    if (!ok) throw argError(`fromDevice needs a live device buffer of ${size * FLOAT32_BYTES} bytes on ${describe(device)}`);
    return new Tensor(CONSTRUCT, shape, device, { data: null, buffer, disposed: false });
  }

  get disposed(): boolean {
    return this.storage.disposed;
  }

  get rank(): number {
    return this.shape.length;
  }

  /** The CPU tensor's own Float32Array (no copy): writes through it change the tensor. */
  get data(): Float32Array {
    this.assertLive();
    if (!this.storage.data) {
      throw new RnnkitError('ERR_RNNKIT_DEVICE', `data is only on CPU tensors; this one is on ${this.device} (use read())`);
    }
    return this.storage.data;
  }

  /** @internal The device buffer of a CUDA tensor. */
  get deviceBuffer(): DeviceBuffer {
    this.assertLive();
    if (!this.storage.buffer) throw new RnnkitError('ERR_RNNKIT_DEVICE', 'this tensor is on the CPU');
    return this.storage.buffer;
  }

  /** A view with another shape of the same size, sharing storage. */
  reshape(shape: readonly number[]): Tensor {
    this.assertLive();
    const { dims, size } = readShape(shape);
    if (size !== this.size) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `cannot reshape [${this.shape.join(', ')}] to [${dims.join(', ')}]`);
    }
    return new Tensor(CONSTRUCT, dims, this.device, this.storage);
  }

  /** A copy on `device` (this tensor itself when it is already there). */
  to(device: DeviceSpec): Tensor {
    this.assertLive();
    const target = resolveDevice(device);
    if (target === this.device) return this;
    const host = this.readSync();
    if (target === 'cpu') return Tensor.fromCpu(host, this.shape);
    return uploadSync(host, this.shape, target);
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

  /** A deep copy on the same device. */
  clone(): Tensor {
    this.assertLive();
    if (this.storage.data) return Tensor.fromCpu(this.copyData(), this.shape);
    checkDeviceAllocation('clone', deviceIndex(this.device), [{ what: 'the copy', floats: this.size }]);
    return Tensor.fromDevice(copyDeviceNew(this.deviceBuffer), this.device, this.shape);
  }

  /** Releases the storage now (device memory goes back to the cache). Idempotent. */
  dispose(): void {
    if (this.storage.disposed) return;
    this.storage.disposed = true;
    this.storage.data = null;
    if (this.storage.buffer) {
      this.storage.buffer.dispose();
      this.storage.buffer = null;
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Throws ERR_RNNKIT_DISPOSED when the tensor was disposed. */
  assertLive(what = 'tensor'): void {
    if (this.storage.disposed) throw new RnnkitError('ERR_RNNKIT_DISPOSED', `${what} has been disposed`);
  }

  toString(): string {
    return `Tensor(float32, [${this.shape.join(', ')}], ${this.device}${this.disposed ? ', disposed' : ''})`;
  }

  /** A copy of a CPU tensor's values (the array may have been detached under it: then too short). */
  private copyData(): Float32Array {
    const data = this.storage.data as Float32Array;
    if (data.length !== this.size) {
      throw argError(`the tensor's Float32Array holds ${data.length} of its ${this.size} values (detached or resized)`);
    }
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

function optionsDevice(options: unknown): Device {
  const o = readOptions(options, TENSOR_OPTIONS, 'tensor options');
  return resolveDevice(o.device === undefined ? 'cpu' : (o.device as DeviceSpec));
}

function toFloat32(data: unknown): Float32Array {
  if (isInstance(data, Float32Array)) return checkHostData(data, 'tensor data');
  if (readGuarded(() => Array.isArray(data), 'tensor data')) {
    // Read element by element into the checked array: a bad element stops the copy at once.
    const values = data as unknown[];
    const n = readGuarded(() => values.length, 'tensor data');
    const out = allocFloats(n, 'the values', 'tensor');
    for (let i = 0; i < n; i++) {
      const v = readGuarded(() => values[i], `tensor data[${i}]`);
      if (typeof v !== 'number') throw new RnnkitError('ERR_RNNKIT_DTYPE', `element ${i} is not a number (got ${describe(v)})`);
      out[i] = v;
    }
    return out;
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

/** A tensor filled with one value. */
export function full(shape: readonly number[], value: number, options?: TensorOptions): Tensor {
  if (typeof value !== 'number') throw new RnnkitError('ERR_RNNKIT_ARG', `full: value must be a number (got ${describe(value)})`);
  return filled('full', shape, value, options);
}

function filled(call: string, shape: readonly number[], value: number, options: TensorOptions | undefined): Tensor {
  const { dims, size } = readShape(shape);
  const device = optionsDevice(options);
  const what = `a tensor [${dims.join(', ')}]`;
  if (device !== 'cpu') checkDeviceAllocation(call, deviceIndex(device), [{ what, floats: size }]);
  const data = allocFloats(size, what, call);
  if (value !== 0) data.fill(value);
  return device === 'cpu' ? Tensor.fromCpu(data, dims) : uploadSync(data, dims, device);
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
