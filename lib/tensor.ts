/**
 * Tensor: float32, contiguous, row-major, on the CPU or a CUDA device.
 *
 * A CPU tensor wraps a Float32Array without copying it (`tensor(array, shape)` keeps the caller's
 * array). A CUDA tensor owns device memory through a native DeviceBuffer from the caching
 * allocator; `dispose()` returns it at once and the garbage collector is the safety net. Views made
 * by `reshape` share storage with their base: disposing either disposes the storage of both.
 */
import { RnnkitError } from './errors';
import { Device, DeviceSpec, deviceIndex, resolveDevice } from './device';
import {
  DeviceBuffer, allocateDevice, copyDeviceNew, download, downloadSync, uploadNew,
} from './native';
import { readOptions } from './args';

export interface TensorOptions {
  device?: DeviceSpec;
}

/** Shared storage of a tensor and its views. */
interface Storage {
  data: Float32Array | null;
  buffer: DeviceBuffer | null;
  disposed: boolean;
}

function checkShape(shape: readonly number[], what = 'shape'): number {
  if (!Array.isArray(shape)) throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must be an array of sizes`);
  let size = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} [${shape.join(', ')}] must hold non-negative integers`);
    }
    size *= d;
  }
  if (size > 2 ** 40) throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} [${shape.join(', ')}] is too large`);
  return size;
}

export class Tensor {
  readonly shape: readonly number[];
  readonly device: Device;
  /** Number of elements. */
  readonly size: number;
  readonly dtype = 'float32' as const;
  private readonly storage: Storage;

  private constructor(shape: readonly number[], device: Device, storage: Storage) {
    this.shape = Object.freeze(shape.slice());
    this.device = device;
    this.size = checkShape(shape);
    this.storage = storage;
  }

  /** @internal Wraps a Float32Array (no copy). */
  static fromCpu(data: Float32Array, shape: readonly number[]): Tensor {
    return new Tensor(shape, 'cpu', { data, buffer: null, disposed: false });
  }

  /** @internal Takes ownership of a device buffer. */
  static fromDevice(buffer: DeviceBuffer, device: Device, shape: readonly number[]): Tensor {
    return new Tensor(shape, device, { data: null, buffer, disposed: false });
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
    const size = checkShape(shape);
    if (size !== this.size) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `cannot reshape [${this.shape.join(', ')}] to [${shape.join(', ')}]`);
    }
    return new Tensor(shape, this.device, this.storage);
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
    if (this.storage.data) return this.storage.data.slice();
    const out = new Float32Array(this.size);
    await download(this.deviceBuffer, out);
    return out;
  }

  /** A copy of the values, as a new Float32Array. */
  readSync(): Float32Array {
    this.assertLive();
    if (this.storage.data) return this.storage.data.slice();
    const out = new Float32Array(this.size);
    downloadSync(this.deviceBuffer, out);
    return out;
  }

  /** A deep copy on the same device. */
  clone(): Tensor {
    this.assertLive();
    if (this.storage.data) return Tensor.fromCpu(this.storage.data.slice(), this.shape);
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
}

function uploadSync(host: Float32Array, shape: readonly number[], device: Device): Tensor {
  return Tensor.fromDevice(uploadNew(deviceIndex(device), host), device, shape);
}

/** @internal A new, uninitialized tensor on a CUDA device. */
export function deviceTensor(device: Device, shape: readonly number[]): Tensor {
  return Tensor.fromDevice(allocateDevice(deviceIndex(device), checkShape(shape)), device, shape);
}

const TENSOR_OPTIONS = ['device'] as const;

function optionsDevice(options: unknown): Device {
  const o = readOptions(options, TENSOR_OPTIONS, 'tensor options');
  return resolveDevice(o.device === undefined ? 'cpu' : (o.device as DeviceSpec));
}

function toFloat32(data: unknown): Float32Array {
  if (data instanceof Float32Array) return data;
  if (Array.isArray(data)) {
    const out = new Float32Array(data.length);
    for (let i = 0; i < data.length; i++) {
      const v = data[i];
      if (typeof v !== 'number') throw new RnnkitError('ERR_RNNKIT_DTYPE', `element ${i} is not a number`);
      out[i] = v;
    }
    return out;
  }
  if (ArrayBuffer.isView(data)) {
    throw new RnnkitError('ERR_RNNKIT_DTYPE', `tensor data must be a Float32Array or number[], got ${data.constructor.name}`);
  }
  throw new RnnkitError('ERR_RNNKIT_DTYPE', 'tensor data must be a Float32Array or number[]');
}

/**
 * A tensor from values. On the CPU a Float32Array is kept as it is (no copy); number[] is
 * converted. `shape` defaults to `[data.length]`.
 */
export function tensor(data: Float32Array | number[], shape?: readonly number[], options?: TensorOptions): Tensor {
  const values = toFloat32(data);
  const s = shape === undefined ? [values.length] : shape;
  const size = checkShape(s);
  if (size !== values.length) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `shape [${s.join(', ')}] needs ${size} values, got ${values.length}`);
  }
  const device = optionsDevice(options);
  if (device === 'cpu') return Tensor.fromCpu(values, s);
  return uploadSync(values, s, device);
}

/** A tensor of zeros. */
export function zeros(shape: readonly number[], options?: TensorOptions): Tensor {
  return full(shape, 0, options);
}

/** A tensor of ones. */
export function ones(shape: readonly number[], options?: TensorOptions): Tensor {
  return full(shape, 1, options);
}

/** A tensor filled with one value. */
export function full(shape: readonly number[], value: number, options?: TensorOptions): Tensor {
  const size = checkShape(shape);
  if (typeof value !== 'number') throw new RnnkitError('ERR_RNNKIT_ARG', `full: value must be a number, got ${typeof value}`);
  const device = optionsDevice(options);
  const data = new Float32Array(size);
  if (value !== 0) data.fill(value);
  return device === 'cpu' ? Tensor.fromCpu(data, shape) : uploadSync(data, shape, device);
}

/** @internal Checks a tensor argument of an op: a live Tensor, optionally of a given rank. */
export function checkTensor(t: unknown, what: string, rank?: number): Tensor {
  if (!(t instanceof Tensor)) throw new RnnkitError('ERR_RNNKIT_ARG', `${what} must be a Tensor`);
  t.assertLive(what);
  if (rank !== undefined && t.rank !== rank) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE', `${what} must have rank ${rank}, got shape [${t.shape.join(', ')}]`);
  }
  return t;
}
