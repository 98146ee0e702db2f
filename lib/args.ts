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
 * Sizes: `sizeProduct` multiplies dimensions without leaving the exactly representable integers;
 * byte limits before allocation build on it.
 */
import { RnnkitError } from './errors';
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

/** An options object after `readOptions`: the allowed keys that were present, each read once. */
export type Options<K extends string> = { readonly [P in K]?: unknown };

function describe(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'symbol') return v.toString();
  if (typeof v === 'function') return 'a function';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object' && v !== null) return v.constructor && v.constructor.name ? `a ${v.constructor.name}` : 'an object';
  return String(v);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !ArrayBuffer.isView(v);
}

/**
 * Reads an options object: `undefined` is `{}`; anything but a plain object, or an object with a
 * key outside `allowed`, throws ERR_RNNKIT_ARG naming the key and the allowed ones. `what` names
 * the object in messages ("Recurrent options", "matmul options").
 */
export function readOptions<K extends string>(value: unknown, allowed: readonly K[], what: string): Options<K> {
  if (value === undefined) return {};
  if (!isRecord(value)) throw argError(`${what} must be an object (got ${describe(value)})`);
  const keys = Object.keys(value);
  const unknown = keys.filter((k) => !(allowed as readonly string[]).includes(k));
  if (unknown.length > 0) {
    const list = allowed.length > 0 ? allowed.join(', ') : 'none';
    throw argError(`unknown key${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} in ${what} (allowed: ${list})`);
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) out[k] = value[k];
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

/** A function (required); `usage` shows its signature in the message. */
export function readFunction<F extends (...args: never[]) => unknown>(v: unknown, name: string, usage: string): F {
  if (typeof v !== 'function') throw argError(`${name} must be a function ${usage}`);
  return v as F;
}

/**
 * An Int32Array of `length` values (any length when omitted), copied: an async kernel must see
 * the values checked here even if the caller writes to the array later. null when null or
 * undefined.
 */
export function readInt32ArrayOrNull(v: unknown, name: string, length?: number): Int32Array | null {
  if (v === undefined || v === null) return null;
  if (!(v instanceof Int32Array)) throw dtypeError(`${name} must be an Int32Array (got ${describe(v)})`);
  if (length !== undefined && v.length !== length) throw shapeError(`${name} must hold ${length} values, got ${v.length}`);
  return v.slice();
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
