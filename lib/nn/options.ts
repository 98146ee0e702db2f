/**
 * Strict options objects for lib/nn: unknown keys are refused so that a misspelled option
 * (hidden_size, padding_idx) is not silently ignored.
 */
import { RnnkitError } from '../errors';

/** The options object, checked to hold only `allowed` keys (undefined gives {}). */
export function checkOptions(o: unknown, allowed: readonly string[], what: string): Record<string, unknown> {
  if (o === undefined) return {};
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new RnnkitError('ERR_RNNKIT_ARG', `${what} must be an object`);
  const unknown = Object.keys(o).filter((k) => !allowed.includes(k));
  if (unknown.length > 0) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `unknown ${what} ${unknown.join(', ')} (allowed: ${allowed.join(', ')})`);
  }
  return o as Record<string, unknown>;
}

/** A boolean option (`fallback` when absent). */
export function optBool(v: unknown, what: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (typeof v !== 'boolean') throw new RnnkitError('ERR_RNNKIT_ARG', `${what} must be a boolean (got ${String(v)})`);
  return v;
}

/** A positive integer option. */
export function checkCount(v: unknown, what: string, min = 1): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 2 ** 31) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `${what} must be an integer >= ${min} (got ${String(v)})`);
  }
  return v;
}

/** A seed option: a non-negative safe integer, or a random one when absent. */
export function seedOf(v: unknown, what = 'seed'): number {
  if (v === undefined) return Math.floor(Math.random() * 2 ** 47);
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `${what} must be a non-negative safe integer (got ${String(v)})`);
  }
  return v;
}
