/**
 * The one argument module: typed checks of the options and arguments of every public constructor
 * and method. Each reader returns the checked value or throws RnnkitError naming the argument:
 * ERR_RNNKIT_ARG for a wrong type or value, ERR_RNNKIT_DTYPE for a typed array of the wrong kind,
 * ERR_RNNKIT_SHAPE for a wrong length or an impossible size.
 *
 * Options objects go through `readOptions`: unknown keys are refused (a misspelled `hidden_size`
 * or `epsilon` is never silently ignored) and every allowed key is read once, so a getter cannot
 * hand back one value to the check and another to the kernel. Readers that take a `fallback`
 * treat `undefined` as "use the fallback"; without one the value is required.
 *
 * Values from the caller are read once, and a getter or a Proxy trap that throws becomes
 * ERR_RNNKIT_ARG naming the argument (its error kept as `cause`): `readOptions`, `readArray`,
 * `readRecord` and `isTensor` never let a caller's exception escape untyped.
 *
 * Sizes and memory (DESIGN: every size is checked before anything is allocated): `readShape` and
 * `sizeProduct` multiply dimensions without leaving the exactly representable integers
 * (ERR_RNNKIT_SHAPE beyond them); `checkHostAllocation` / `checkDeviceAllocation` take the arrays a
 * call is about to allocate and refuse the call with ERR_RNNKIT_OOM, naming the largest array and
 * the bytes, when one is beyond V8's largest typed array or their total beyond the limit:
 * `RNNKIT_MAX_ALLOC_BYTES` when it is lower, else the machine's memory (host) or the device's
 * memory (CUDA). `allocFloats` makes a checked array and turns a V8 allocation failure that
 * happens anyway into ERR_RNNKIT_OOM.
 */
import * as os from 'os';
import { constants as bufferConstants } from 'buffer';
import { types } from 'util';
import { RnnkitError } from './errors';
import { native } from './native';
import { Tensor, checkTensor } from './tensor';

/** ERR_RNNKIT_ARG with `message`. */
export function argError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_ARG', message);
}

/** ERR_RNNKIT_SHAPE with `message`. */
export function shapeError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_SHAPE', message);
}

/** ERR_RNNKIT_DTYPE with `message`. */
export function dtypeError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_DTYPE', message);
}

/** ERR_RNNKIT_OOM with `message`. */
export function oomError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_OOM', message);
}

/** An options object after `readOptions`: the allowed keys that were present, each read once. */
export type Options<K extends string> = { readonly [P in K]?: unknown };

/** A short description of a caller's value for messages; never runs the caller's code, never throws. */
export function describe(v: unknown): string {
  if (types.isProxy(v)) return 'a Proxy';
  if (typeof v === 'string') return v.length > 40 ? `'${v.slice(0, 40)}…'` : `'${v}'`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return 'a symbol';
  if (typeof v === 'function') return 'a function';
  if (typeof v !== 'object' || v === null) return String(v);
  if (Array.isArray(v)) return 'an array';
  try {
    const proto = Object.getPrototypeOf(v) as object | null;
    if (proto === null || types.isProxy(proto)) return 'an object';
    const ctor = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value as unknown;
    return typeof ctor === 'function' && ctor.name ? `a ${ctor.name}` : 'an object';
  } catch {
    return 'an object';
  }
}

/**
 * Runs `read` (which reads a caller's value: a property, a key list, an iteration) and turns an
 * exception from the caller's getters or Proxy traps into ERR_RNNKIT_ARG naming `what`.
 */
export function readGuarded<T>(read: () => T, what: string): T {
  try {
    return read();
  } catch (err) {
    if (err instanceof RnnkitError) throw err;
    const why = err instanceof Error ? err.message : describe(err);
    throw new RnnkitError('ERR_RNNKIT_ARG', `reading ${what} threw: ${why}`, { cause: err });
  }
}

/**
 * Whether `v` is an instance of `ctor` (a Float32Array, an Optimizer, ...) and not a caller's Proxy
 * of one, without letting a Proxy in its prototype chain throw.
 */
export function isInstance<T>(v: unknown, ctor: Function & { prototype: T }): v is T {
  return typeof v === 'object' && v !== null && !types.isProxy(v) && readGuarded(() => v instanceof ctor, 'an argument');
}

/** `v` when it is an instance of `ctor` (`kind` names it: 'an Optimizer'), null when null or undefined, else ERR_RNNKIT_ARG. */
export function readInstanceOrNull<T>(v: unknown, ctor: Function & { prototype: T }, name: string, kind: string): T | null {
  if (v === undefined || v === null) return null;
  if (!isInstance(v, ctor)) throw argError(`${name} must be ${kind} (got ${describe(v)})`);
  return v as T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !ArrayBuffer.isView(v) && !readGuarded(() => Array.isArray(v), 'the value');
}

/**
 * A plain copy of an object's own enumerable string-keyed entries, each value read once (getters
 * that throw become ERR_RNNKIT_ARG). Anything but an object throws ERR_RNNKIT_ARG: `what` names it.
 */
export function readRecord(value: unknown, what: string): Record<string, unknown> {
  if (!isRecord(value)) throw argError(`${what} must be an object (got ${describe(value)})`);
  return readGuarded(() => {
    const out: Record<string, unknown> = {};
    // defineProperty: a key named __proto__ stays a key instead of replacing the copy's prototype.
    for (const k of Object.keys(value)) Object.defineProperty(out, k, { value: value[k], enumerable: true, writable: true, configurable: true });
    return out;
  }, what);
}

/**
 * A copy of an array of at most `maxLength` elements, each read once (a Proxy or getters that
 * throw become ERR_RNNKIT_ARG). Anything but an array throws ERR_RNNKIT_ARG naming `what`; a
 * longer one ERR_RNNKIT_SHAPE before any element is read.
 */
export function readArray(value: unknown, what: string, maxLength = 2 ** 24): unknown[] {
  if (!readGuarded(() => Array.isArray(value), what)) throw argError(`${what} must be an array (got ${describe(value)})`);
  return readGuarded(() => {
    const a = value as unknown[];
    const n = a.length;
    if (n > maxLength) throw shapeError(`${what} has ${n} elements (at most ${maxLength})`);
    const out = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = a[i];
    return out;
  }, what);
}

/**
 * Reads an options object: `undefined` is `{}`; anything but a plain object, or an object with a
 * key outside `allowed`, throws ERR_RNNKIT_ARG naming the key and the allowed ones. `what` names
 * the object in messages ("Recurrent options", "matmul options").
 */
export function readOptions<K extends string>(value: unknown, allowed: readonly K[], what: string): Options<K> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw argError(`${what} must be an object (got ${describe(value)})`);
  const keys = readGuarded(() => Object.keys(value), what);
  const unknown = keys.filter((k) => !(allowed as readonly string[]).includes(k));
  if (unknown.length > 0) {
    const list = allowed.length > 0 ? allowed.join(', ') : 'none';
    const shown = unknown.slice(0, 8).map((k) => (k.length > 40 ? `${k.slice(0, 40)}…` : k)).join(', ');
    throw argError(`unknown key${unknown.length > 1 ? 's' : ''} ${shown}${unknown.length > 8 ? ', …' : ''} in ${what} (allowed: ${list})`);
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = readGuarded(() => value[k], `${what}.${k}`);
  return out as Options<K>;
}

/** Like `readOptions`, for an options object that must be given: `usage` is the message without one. */
export function readRequiredOptions<K extends string>(value: unknown, allowed: readonly K[], what: string,
  usage: string): Options<K> {
  if (value === undefined || value === null) throw argError(usage);
  return readOptions(value, allowed, what);
}

/** A boolean; `fallback` when undefined (required without a fallback). */
export function readBoolean(v: unknown, name: string, fallback?: boolean): boolean {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'boolean') throw argError(`${name} must be a boolean (got ${describe(v)})`);
  return v;
}

/** An integer in [min, max]; `fallback` when undefined (required without a fallback). */
export function readInteger(v: unknown, name: string, min: number, max: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw argError(`${name} must be an integer in [${min}, ${max}] (got ${describe(v)})`);
  }
  return v;
}

/** A seed: a non-negative safe integer; `fallback` when undefined. */
export function readSeed(v: unknown, name: string, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw argError(`${name} must be a non-negative safe integer (got ${describe(v)})`);
  }
  return v;
}

/** Bounds of `readNumber`; `below` / `above` are exclusive, `min` / `max` inclusive. */
export interface NumberRange {
  min?: number;
  max?: number;
  above?: number;
  below?: number;
}

function rangeText(r: NumberRange): string {
  const parts: string[] = [];
  if (r.min !== undefined) parts.push(`>= ${r.min}`);
  if (r.above !== undefined) parts.push(`> ${r.above}`);
  if (r.max !== undefined) parts.push(`<= ${r.max}`);
  if (r.below !== undefined) parts.push(`< ${r.below}`);
  return parts.length > 0 ? ` ${parts.join(' and ')}` : '';
}

/** A finite number within `range`; `fallback` when undefined (required without a fallback). */
export function readNumber(v: unknown, name: string, range: NumberRange = {}, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  const ok = typeof v === 'number' && Number.isFinite(v) &&
    (range.min === undefined || v >= range.min) && (range.max === undefined || v <= range.max) &&
    (range.above === undefined || v > range.above) && (range.below === undefined || v < range.below);
  if (!ok) throw argError(`${name} must be a finite number${rangeText(range)} (got ${describe(v)})`);
  return v as number;
}

/** One of `values`; `fallback` when undefined (required without a fallback). */
export function readChoice<T extends string>(v: unknown, name: string, values: readonly T[], fallback?: T): T {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
    throw argError(`${name} must be one of ${values.map((s) => `'${s}'`).join(', ')} (got ${describe(v)})`);
  }
  return v as T;
}

/** A function (required, not a class); `usage` shows its signature in the message. */
export function readFunction<F extends (...args: never[]) => unknown>(v: unknown, name: string, usage: string): F {
  if (typeof v !== 'function' || types.isProxy(v) || /^class\b/.test(Function.prototype.toString.call(v))) {
    throw argError(`${name} must be a function ${usage} (got ${describe(v)})`);
  }
  return v as F;
}

/**
 * An Int32Array of `length` values (any length when omitted), copied: an async kernel must see
 * the values checked here even if the caller writes to the array later. null when null or
 * undefined.
 */
export function readInt32ArrayOrNull(v: unknown, name: string, length?: number): Int32Array | null {
  if (v === undefined || v === null) return null;
  if (!isInstance(v, Int32Array)) throw dtypeError(`${name} must be an Int32Array (got ${describe(v)})`);
  if (length !== undefined && v.length !== length) throw shapeError(`${name} must hold ${length} values, got ${v.length}`);
  return copyOf(v, name);
}

/**
 * Sequence lengths: B values in 0..T, copied. null when absent (every sequence runs T steps).
 */
export function readSeqLengths(v: unknown, T: number, B: number, name = 'seqLengths'): Int32Array | null {
  const lens = readInt32ArrayOrNull(v, name, B);
  if (lens === null) return null;
  for (let b = 0; b < B; b++) {
    if (lens[b] < 0 || lens[b] > T) throw argError(`${name}[${b}] = ${lens[b]} is outside 0..${T}`);
  }
  return lens;
}

const sameShape = (t: Tensor, shape: readonly number[]): boolean =>
  t.rank === shape.length && t.shape.every((d, k) => d === shape[k]);

/** A live tensor, optionally of exactly `shape`; null when null or undefined. */
export function readTensorOrNull(v: unknown, name: string, shape?: readonly number[]): Tensor | null {
  if (v === undefined || v === null) return null;
  const t = checkTensor(v, name);
  if (shape !== undefined && !sameShape(t, shape)) {
    throw shapeError(`${name} must have shape [${shape.join(', ')}], got [${t.shape.join(', ')}]`);
  }
  return t;
}

/** A live tensor, optionally of exactly `shape` (required). */
export function readTensor(v: unknown, name: string, shape?: readonly number[]): Tensor {
  if (v === undefined || v === null) throw argError(`${name} must be a Tensor`);
  return readTensorOrNull(v, name, shape) as Tensor;
}

/** The product of `dims`, refused with ERR_RNNKIT_SHAPE once it leaves the safe integers. */
export function sizeProduct(dims: readonly number[], what: string): number {
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (!Number.isSafeInteger(n)) throw shapeError(`${what} [${dims.join(', ')}] is too large`);
  }
  return n;
}

/** A checked shape: a copy of the dimensions and their product. */
export interface Shape {
  dims: number[];
  size: number;
}

/**
 * A shape: an array of non-negative safe integers whose product is a safe integer (copied, each
 * element read once). ERR_RNNKIT_SHAPE otherwise, naming `what`.
 */
export function readShape(v: unknown, what = 'shape'): Shape {
  if (!readGuarded(() => Array.isArray(v), what)) throw shapeError(`${what} must be an array of sizes (got ${describe(v)})`);
  const dims = readArray(v, what, 64);
  for (const d of dims) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw shapeError(`${what} [${dims.map(describe).join(', ')}] must hold non-negative integers`);
    }
  }
  const checked = dims as number[];
  return { dims: checked, size: sizeProduct(checked, what) };
}

// ---------------------------------------------------------------------------------------------
// Allocation limits

/** Bytes of one float32 value. */
export const FLOAT32_BYTES = 4;

/**
 * One array a call is about to allocate: `floats` float32 values, `what` naming it for messages.
 * `native` marks memory the kernels allocate themselves (several buffers, not one typed array):
 * only the total limit applies to it.
 */
export interface Allocation {
  readonly what: string;
  readonly floats: number;
  readonly native?: boolean;
}

/** A byte limit and where it comes from, for messages. */
export interface AllocLimit {
  readonly bytes: number;
  readonly source: string;
}

/** The most float32 values one typed array can hold in this V8. */
export const MAX_ARRAY_FLOATS = Math.min(bufferConstants.MAX_LENGTH, Math.floor(Number.MAX_SAFE_INTEGER / FLOAT32_BYTES));

const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

/** `bytes` for messages: the exact count and a rounded binary unit. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return String(bytes);
  const unit = bytes >= 2 ** 40 ? 'TiB' : bytes >= 2 ** 30 ? 'GiB' : bytes >= 2 ** 20 ? 'MiB' : bytes >= 2 ** 10 ? 'KiB' : '';
  if (unit === '') return `${bytes} bytes`;
  const scale = { KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30, TiB: 2 ** 40 }[unit];
  return `${bytes} bytes (${(bytes / scale).toFixed(1)} ${unit})`;
}

let configured: { raw: string | undefined; bytes: number } | null = null;

/**
 * RNNKIT_MAX_ALLOC_BYTES in bytes (Infinity when unset): a whole number, optionally with a K, M,
 * G or T suffix (powers of 1024). Read again whenever the variable changes; a value that is not
 * a byte count throws ERR_RNNKIT_ARG from every call that allocates.
 */
export function configuredAllocLimit(): number {
  const raw = process.env.RNNKIT_MAX_ALLOC_BYTES;
  if (configured !== null && configured.raw === raw) return configured.bytes;
  let bytes = Infinity;
  if (raw !== undefined && raw.trim() !== '') {
    const m = /^\s*(\d+)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(raw);
    bytes = m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : NaN;
    if (!Number.isSafeInteger(bytes) || bytes < 1) {
      throw argError(`RNNKIT_MAX_ALLOC_BYTES='${raw}' is not a byte count (e.g. 8589934592 or 8G)`);
    }
  }
  configured = { raw, bytes };
  return bytes;
}

function limitOf(platform: number, platformSource: string): AllocLimit {
  const env = configuredAllocLimit();
  return env <= platform ? { bytes: env, source: 'RNNKIT_MAX_ALLOC_BYTES' } : { bytes: platform, source: platformSource };
}

/** The most bytes one call may allocate on the host: RNNKIT_MAX_ALLOC_BYTES, or the machine's memory. */
export function hostAllocLimit(): AllocLimit {
  return limitOf(os.totalmem(), "this machine's memory");
}

const deviceMemory = new Map<number, number>();

/** The most bytes one call may allocate on CUDA device `device`: RNNKIT_MAX_ALLOC_BYTES, or its memory. */
export function deviceAllocLimit(device: number): AllocLimit {
  let total = deviceMemory.get(device);
  if (total === undefined) {
    const found = native().backendInfo().cuda.devices.find((d) => d.index === device);
    total = found ? found.totalMemory : 0;
    deviceMemory.set(device, total);
  }
  return limitOf(total, `the memory of cuda:${device}`);
}

function checkAllocation(call: string, parts: readonly Allocation[], limit: AllocLimit, perArray: number): void {
  let total = 0;
  let largest: Allocation | null = null;
  for (const p of parts) {
    if (!Number.isSafeInteger(p.floats) || p.floats < 0) throw shapeError(`${call}: ${p.what} is too large (${p.floats} values)`);
    if (p.floats > perArray && !p.native) {
      throw oomError(`${call}: ${p.what} would take ${formatBytes(p.floats * FLOAT32_BYTES)}, beyond the largest ` +
        `array V8 makes (${formatBytes(perArray * FLOAT32_BYTES)})`);
    }
    total += p.floats * FLOAT32_BYTES;
    if (largest === null || p.floats > largest.floats) largest = p;
  }
  if (largest !== null && total > limit.bytes) {
    const what = parts.length > 1
      ? `its arrays would take ${formatBytes(total)} in all (the largest, ${largest.what}, ${formatBytes(largest.floats * FLOAT32_BYTES)})`
      : `${largest.what} would take ${formatBytes(total)}`;
    throw oomError(`${call}: ${what}, above the limit of ${formatBytes(limit.bytes)} (${limit.source})`);
  }
}

/**
 * Refuses a call whose host arrays would not fit, before any is allocated: ERR_RNNKIT_OOM when one
 * is beyond V8's largest typed array or all of them beyond `hostAllocLimit()`.
 */
export function checkHostAllocation(call: string, parts: readonly Allocation[]): void {
  checkAllocation(call, parts, hostAllocLimit(), MAX_ARRAY_FLOATS);
}

/** Like `checkHostAllocation` for device buffers on CUDA device `device` (`deviceAllocLimit`). */
export function checkDeviceAllocation(call: string, device: number, parts: readonly Allocation[]): void {
  checkAllocation(call, parts, deviceAllocLimit(device), Number.MAX_SAFE_INTEGER / FLOAT32_BYTES);
}

/**
 * A new zeroed Float32Array of `floats` values, checked first like one host allocation of `call`;
 * a V8 allocation failure that happens anyway becomes ERR_RNNKIT_OOM.
 */
export function allocFloats(floats: number, what: string, call = what): Float32Array {
  return allocTyped(Float32Array, floats, what, call);
}

/** A new zeroed Int32Array of `n` values, checked and allocated as allocFloats does (both 4-byte elements). */
export function allocInts(n: number, what: string, call = what): Int32Array {
  return allocTyped(Int32Array, n, what, call);
}

function allocTyped<T>(ctor: new (n: number) => T, n: number, what: string, call: string): T {
  checkHostAllocation(call, [{ what, floats: n }]);
  try {
    return new ctor(n);
  } catch (err) {
    throw new RnnkitError('ERR_RNNKIT_OOM', `${call}: cannot allocate ${what} (${formatBytes(n * FLOAT32_BYTES)}): ` +
      `${(err as Error).message}`, { cause: err });
  }
}

/**
 * Runs `copy` (a slice or clone of existing data): a V8 allocation failure becomes ERR_RNNKIT_OOM,
 * and an array the caller detached (transferred) under it ERR_RNNKIT_ARG.
 */
export function copyGuarded<T>(copy: () => T, what: string): T {
  try {
    return copy();
  } catch (err) {
    if (err instanceof RangeError) throw new RnnkitError('ERR_RNNKIT_OOM', `cannot copy ${what}: ${err.message}`, { cause: err });
    if (err instanceof TypeError) throw new RnnkitError('ERR_RNNKIT_ARG', `cannot copy ${what}: ${err.message}`, { cause: err });
    throw err;
  }
}

/**
 * A caller's number[] read element by element into `out` (made by `alloc` for its length): a bad
 * element stops the copy at once with ERR_RNNKIT_DTYPE naming it (`accept` narrows what a number
 * may be, `kind` says what it must be); a throwing getter or Proxy trap is ERR_RNNKIT_ARG.
 */
export function readNumberList<T extends Float32Array | Int32Array>(data: unknown, what: string, alloc: (n: number) => T,
  accept: (v: number) => boolean = () => true, kind = 'a number'): T {
  const values = data as unknown[];
  const n = readGuarded(() => values.length, what);
  const out = alloc(n);
  for (let i = 0; i < n; i++) {
    const v = readGuarded(() => values[i], `${what}[${i}]`);
    if (typeof v !== 'number' || !accept(v)) throw dtypeError(`element ${i} is not ${kind} (got ${describe(v)})`);
    out[i] = v;
  }
  return out;
}

/** A copy of a caller's typed array (copyGuarded's errors). */
export function copyOf<T extends Float32Array | Int32Array>(v: T, what: string): T {
  return copyGuarded(() => v.slice() as T, what);
}
