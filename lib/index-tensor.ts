/**
 * IndexTensor: int32 ids or class targets, of any shape, on the CPU or a CUDA device — what a
 * PyTorch user indexes an Embedding or a loss with. Move a data set's ids to the device once and
 * slice a batch per step: `crossEntropy` and `nn.Embedding` take a device IndexTensor's memory as
 * it is, so their ids cost no copy (an Int32Array is uploaded by every call).
 *
 * Immutable: `indexTensor()` copies its data, and nothing writes an IndexTensor afterwards, so
 * what is known of its values stays true. Made from host data it records their bounds (`bounds`),
 * which an op checks on the host instead of reading the ids back; a slice inherits its parent's
 * (conservative). Only where the bounds do not prove an op's ids valid does the op read the values
 * (one counted copy for a device tensor) and check them exactly, with the errors it gives for an
 * Int32Array, then keep their exact bounds for the next op: an id out of range is always a typed
 * error, never a device fault or silent wrong data.
 *
 * `slice(start, end)` along the first axis is a view sharing the parent's storage (on CUDA a
 * native slice of its buffer, native/napi/device_buffer.h, which keeps the memory alive for jobs
 * in flight). Disposing the parent makes every slice report disposed; disposing a slice frees only
 * the slice. The device memory returns to the allocator once the parent and the slices made from
 * it are disposed or collected.
 *
 * Examples: [Training on a device](../README.md#training-on-a-device).
 * @module
 */
import { RnnkitError } from './errors';
import { Device, DeviceSpec, deviceIndex, resolveDevice } from './device';
import { DeviceBuffer, download, downloadSync, sliceDevice, uploadNew } from './native';
import {
  allocInts, argError, checkDeviceAllocation, copyOf, describe, dtypeError, isInstance, readGuarded, readInstanceOrNull, readInteger,
  readNumberList, readShape, shapeError,
} from './args';
import { TensorOptions, optionsDevice } from './tensor';

/**
 * What is known of an IndexTensor's values without reading them: every value is `min`, `max`, or
 * in [`innerMin`, `innerMax`] (an empty range when innerMin > innerMax). The inner range lets
 * targets padded with an ignoreIndex below or above the classes (−100, or the class count) prove
 * valid too.
 */
export interface IndexBounds {
  /** No value is below this. */
  readonly min: number;
  /** No value is above this. */
  readonly max: number;
  /** No value lies strictly between `min` and this. */
  readonly innerMin: number;
  /** No value lies strictly between this and `max`. */
  readonly innerMax: number;
}

/** Storage shared by an IndexTensor and its slices. */
interface IndexStorage {
  data: Int32Array | null;
  buffer: DeviceBuffer | null;
  disposed: boolean;
}

/** The exact bounds of `values` (null when there are none). */
function boundsOf(values: Int32Array): IndexBounds | null {
  if (values.length === 0) return null;
  let min = values[0];
  let max = values[0];
  for (const v of values) {
    if (v < min) min = v;
    else if (v > max) max = v;
  }
  let innerMin = max;
  let innerMax = min;
  for (const v of values) {
    if (v > min && v < innerMin) innerMin = v;
    if (v < max && v > innerMax) innerMax = v;
  }
  return { min, max, innerMin, innerMax };
}

/**
 * @internal Every id in [0, V) or equal to `except` (null: none), a row whose `mask` weight is 0
 * excused; else ERR_RNNKIT_ARG naming the first bad one as `what`[k].
 */
export function checkIds(ids: Int32Array, what: string, V: number, except: number | null, mask: Float32Array | null): void {
  for (let k = 0; k < ids.length; k++) {
    const v = ids[k];
    if (v !== except && (mask === null || mask[k] !== 0) && (v < 0 || v >= V)) {
      throw argError(`${what}[${k}] = ${v} is outside [0, ${V})${except === null ? '' : ` and is not ignoreIndex ${except}`}`);
    }
  }
}

/** @internal Whether `b` proves every value in [lo, hi] or equal to `except` (null: no exception). */
export function boundsWithin(b: IndexBounds | null, lo: number, hi: number, except: number | null): boolean {
  if (b === null) return true;
  const ok = (v: number): boolean => v === except || (v >= lo && v <= hi);
  const inner = b.innerMin > b.innerMax || (b.innerMin >= lo && b.innerMax <= hi) || (b.innerMin === b.innerMax && ok(b.innerMin));
  return ok(b.min) && ok(b.max) && inner;
}

const describeBounds = (b: IndexBounds): string =>
  `[${b.min}, ${b.max}]${b.innerMin <= b.innerMax && (b.innerMin > b.min || b.innerMax < b.max) ? ` (inner [${b.innerMin}, ${b.innerMax}])` : ''}`;

/** A Float32Array view of an Int32Array's bytes, for the float-typed copy bindings (a copy moves bytes as they are). */
const asFloats = (v: Int32Array): Float32Array => new Float32Array(v.buffer, v.byteOffset, v.length);

/** Only this module constructs IndexTensors: the public way is indexTensor(). */
const CONSTRUCT = Symbol('IndexTensor');

/** Whether `v` is an IndexTensor (a Proxy is not one). @internal */
export function isIndexTensor(v: unknown): v is IndexTensor {
  return isInstance(v, IndexTensor);
}

/** @internal Ids an op takes: the ids of an IndexTensor on the op's device, or host ids. */
export interface ResolvedIds {
  /** A host Int32Array (a CPU IndexTensor's values, no copy) or a CUDA IndexTensor's buffer. */
  ids: Int32Array | DeviceBuffer;
  /** Why the values were read to the host to be checked (null when the bounds proved them). */
  fallback: string | null;
}

/**
 * Immutable int32 values, contiguous and row-major, on the CPU or a CUDA device; made by
 * `indexTensor()`. `dispose()` frees the storage at once, the garbage collector otherwise.
 */
export class IndexTensor {
  /** The size of each axis. */
  readonly shape: readonly number[];
  /** Where the values live: `'cpu'` or `'cuda:N'`. */
  readonly device: Device;
  /** Number of elements. */
  readonly size: number;
  /** Always `'int32'`. */
  readonly dtype = 'int32' as const;
  /** A CUDA slice's own native slice of the storage's buffer. */
  private view: DeviceBuffer | null = null;
  private sliceDisposed = false;

  /**
   * @internal Use indexTensor(). `offset`: a slice's element offset into the storage it shares;
   * `sliced`: whether this is a slice (its dispose frees only itself).
   */
  constructor(token: symbol, shape: readonly number[], device: Device, private readonly storage: IndexStorage,
    private readonly offset: number, private knownBounds: IndexBounds | null, private readonly sliced: boolean) {
    if (token !== CONSTRUCT) throw argError('IndexTensor has no public constructor: use indexTensor()');
    const { dims, size } = readShape(shape);
    this.shape = Object.freeze(dims);
    this.device = device;
    this.size = size;
  }

  /** What is known of the values (exact for one made from host data; a slice's are its parent's); null when empty. */
  get bounds(): IndexBounds | null {
    return this.knownBounds;
  }

  /** True once this tensor, or the one it was sliced from, was disposed. */
  get disposed(): boolean {
    return this.storage.disposed || this.sliceDisposed;
  }

  /** The number of axes. */
  get rank(): number {
    return this.shape.length;
  }

  /**
   * Rows [start, end) of the first axis, as a view sharing this tensor's storage (no copy; on CUDA
   * a device view). Negative positions count from the end, as in Python; `end` defaults to the
   * row count. ERR_RNNKIT_SHAPE for a rank-0 tensor or a range outside the rows, ERR_RNNKIT_ARG
   * for a position that is not an integer.
   */
  slice(start: number, end?: number): IndexTensor {
    this.assertLive();
    if (this.rank === 0) throw shapeError('slice needs an IndexTensor of rank 1 or more (this one is a scalar)');
    const rows = this.shape[0];
    const at = (v: unknown, name: string): number => {
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw argError(`slice: ${name} must be an integer (got ${describe(v)})`);
      if (v < -rows || v > rows) throw shapeError(`slice: ${name} ${v} is outside [${-rows}, ${rows}] (${rows} rows)`);
      return v < 0 ? v + rows : v;
    };
    const a = at(start, 'start');
    const b = end === undefined ? rows : at(end, 'end');
    if (a > b) throw shapeError(`slice: start ${start} is after end ${end}`);
    const row = rows === 0 ? 0 : this.size / rows;
    const shape = [b - a, ...this.shape.slice(1)];
    const s = new IndexTensor(CONSTRUCT, shape, this.device, this.storage, this.offset + a * row, this.knownBounds, true);
    if (this.device !== 'cpu') s.view = sliceDevice(this.wholeBuffer(), s.offset, s.size);
    return s;
  }

  /** A copy on `device` (this tensor itself when it is already there), with exact bounds. */
  to(device: DeviceSpec): IndexTensor {
    this.assertLive();
    const target = resolveDevice(device);
    if (target === this.device) return this;
    return fromValues(this.device === 'cpu' ? this.hostValues() : this.readSync(), this.shape, target);
  }

  /** A copy of the values, as a new Int32Array, without blocking the event loop. */
  async read(): Promise<Int32Array> {
    this.assertLive();
    if (this.device === 'cpu') return this.readSync();
    const out = this.hostArray('read');
    await download(this.deviceBuffer, asFloats(out));
    return out;
  }

  /** A copy of the values, as a new Int32Array. */
  readSync(): Int32Array {
    this.assertLive();
    if (this.device === 'cpu') return copyOf(this.hostValues(), 'the index tensor');
    const out = this.hostArray('readSync');
    downloadSync(this.deviceBuffer, asFloats(out));
    return out;
  }

  /**
   * @internal The ids for an op on `device` whose ids must be in [0, V) or equal to `except`
   * (null: no exception; a row whose `mask` weight is 0 is excused): the host values of a CPU
   * tensor (no copy), or this CUDA tensor's buffer when `device` is its device (ERR_RNNKIT_DEVICE
   * otherwise). When the bounds do not prove the ids valid, the values (read to the host from a
   * device) are checked exactly (checkIds, ERR_RNNKIT_ARG naming the first bad one as `what`[k]),
   * and this tensor keeps their exact bounds from then on.
   */
  idsFor(device: DeviceSpec, what: string, V: number, except: number | null, mask: Float32Array | null): ResolvedIds {
    if (typeof what !== 'string') throw argError(`idsFor: what must be a string (got ${describe(what)})`);
    const name = what;
    this.assertLive(name);
    const target = resolveDevice(device);
    const classes = readInteger(V, 'V', 1, 2 ** 31);
    const skip = except === null ? null : readInteger(except, 'except', -(2 ** 31), 2 ** 31 - 1);
    const weights = readInstanceOrNull(mask, Float32Array, 'mask', 'a Float32Array');
    if (weights !== null && weights.length !== this.size) throw shapeError(`mask must hold ${this.size} values, got ${weights.length}`);
    const host = this.device === 'cpu';
    if (!host && target !== this.device) {
      throw new RnnkitError('ERR_RNNKIT_DEVICE', `${name} are on ${this.device} and the op on ${target}: move one of them (.to())`);
    }
    if (boundsWithin(this.knownBounds, 0, classes - 1, skip)) return { ids: host ? this.hostValues() : this.deviceBuffer, fallback: null };
    const before = this.knownBounds === null ? '' : describeBounds(this.knownBounds);
    const values = host ? this.hostValues() : this.readSync();
    this.knownBounds = boundsOf(values);
    checkIds(values, name, classes, skip, weights);
    if (host) return { ids: values, fallback: null };
    return { ids: this.deviceBuffer, fallback: `the bounds ${before} of the ${name} did not prove them in range: read to the host and checked` };
  }

  /** @internal The device buffer of a CUDA tensor (a slice's own view of its parent's). */
  get deviceBuffer(): DeviceBuffer {
    this.assertLive();
    return this.view ?? this.wholeBuffer();
  }

  /** Releases the storage now (a slice: only the slice). Idempotent. */
  dispose(): void {
    if (this.sliced) {
      this.sliceDisposed = true;
      if (this.view) this.view.dispose();
      this.view = null;
      return;
    }
    if (this.storage.disposed) return;
    this.storage.disposed = true;
    this.storage.data = null;
    if (this.storage.buffer) this.storage.buffer.dispose();
    this.storage.buffer = null;
  }

  /** `dispose()`, so that `using ids = indexTensor(...)` frees the tensor at the end of its block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** Throws ERR_RNNKIT_DISPOSED when the tensor (or the one it was sliced from) was disposed. */
  assertLive(what = 'index tensor'): void {
    if (this.disposed) throw new RnnkitError('ERR_RNNKIT_DISPOSED', `${typeof what === 'string' ? what : 'index tensor'} has been disposed`);
  }

  /** `IndexTensor(int32, [shape], device)`, with `disposed` when it is. */
  toString(): string {
    return `IndexTensor(int32, [${this.shape.join(', ')}], ${this.device}${this.disposed ? ', disposed' : ''})`;
  }

  private wholeBuffer(): DeviceBuffer {
    const b = this.storage.buffer;
    if (!b) throw new RnnkitError('ERR_RNNKIT_DEVICE', 'this index tensor is on the CPU');
    return b;
  }

  /** A CPU tensor's values (no copy). */
  private hostValues(): Int32Array {
    const all = this.storage.data as Int32Array;
    return this.offset === 0 && this.size === all.length ? all : all.subarray(this.offset, this.offset + this.size);
  }

  private hostArray(call: string): Int32Array {
    return allocInts(this.size, 'the host copy', call);
  }
}

/** A new IndexTensor holding `values` (kept as they are on the CPU: the caller hands them over). */
function fromValues(values: Int32Array, shape: readonly number[], device: Device): IndexTensor {
  const bounds = boundsOf(values);
  if (device === 'cpu') return new IndexTensor(CONSTRUCT, shape, device, { data: values, buffer: null, disposed: false }, 0, bounds, false);
  const index = deviceIndex(device);
  checkDeviceAllocation('indexTensor', index, [{ what: `an index tensor [${shape.join(', ')}]`, floats: values.length }]);
  return new IndexTensor(CONSTRUCT, shape, device, { data: null, buffer: uploadNew(index, asFloats(values)), disposed: false }, 0, bounds,
    false);
}

const isInt32 = (v: number): boolean => Number.isInteger(v) && v >= -(2 ** 31) && v < 2 ** 31;

/**
 * An IndexTensor from int32 values (copied: later writes to `data` do not reach it), on
 * `options.device` (default the CPU), with its exact bounds. `shape` defaults to `[data.length]`.
 * ERR_RNNKIT_DTYPE for data that is neither an Int32Array nor a number[] of int32 integers,
 * ERR_RNNKIT_SHAPE for a shape of another size.
 */
export function indexTensor(data: Int32Array | number[], shape?: readonly number[], options?: TensorOptions): IndexTensor {
  const device = optionsDevice(options);
  let values: Int32Array;
  if (isInstance(data, Int32Array)) {
    // The upload to a device copies; the CPU keeps a copy of its own.
    values = device === 'cpu' ? copyOf(data, 'index data') : data;
  } else if (readGuarded(() => Array.isArray(data), 'index data')) {
    values = readNumberList(data, 'index data', (n) => allocInts(n, 'the values', 'indexTensor'), isInt32, 'an int32 integer');
  } else {
    throw dtypeError(`index data must be an Int32Array or number[] (got ${describe(data)})`);
  }
  const s = shape === undefined ? { dims: [values.length], size: values.length } : readShape(shape);
  if (s.size !== values.length) throw shapeError(`shape [${s.dims.join(', ')}] needs ${s.size} values, got ${values.length}`);
  return fromValues(values, s.dims, device);
}

/** @internal Resolved ids that must be on the host (a CPU op): ERR_RNNKIT_DEVICE for a device buffer. */
export function hostIds(ids: Int32Array | DeviceBuffer, what: string): Int32Array {
  if (isInstance(ids, Int32Array)) return ids;
  throw new RnnkitError('ERR_RNNKIT_DEVICE', `${what} are on a CUDA device and the op on the CPU`);
}

/**
 * @internal The ids argument of an op (`what` names it): an Int32Array (as it is) or a live
 * IndexTensor; ERR_RNNKIT_DTYPE for anything else.
 */
export function readIds(v: unknown, what: string): Int32Array | IndexTensor {
  if (isInstance(v, Int32Array)) return v;
  if (isIndexTensor(v)) {
    v.assertLive(what);
    return v;
  }
  throw dtypeError(`${what} must be an Int32Array or an IndexTensor (got ${describe(v)})`);
}
