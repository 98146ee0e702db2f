/**
 * Grad mode: whether operations are recorded for backward. It is kept per asynchronous context
 * (AsyncLocalStorage), so `noGrad(async () => ...)` switches recording off for everything that
 * function awaits, and for nothing else that runs meanwhile.
 */
import { AsyncLocalStorage } from 'async_hooks';
import { RnnkitError } from '../errors';

const mode = new AsyncLocalStorage<boolean>();
let enabledOutside = true;

/** Whether operations on tensors that require gradients are recorded here and now. */
export function isGradEnabled(): boolean {
  const inside = mode.getStore();
  return inside === undefined ? enabledOutside : inside;
}

/** Sets grad mode outside of any `noGrad` / `enableGrad` scope (default on); returns the previous value. */
export function setGradEnabled(on: boolean): boolean {
  if (typeof on !== 'boolean') throw new RnnkitError('ERR_RNNKIT_ARG', 'setGradEnabled takes a boolean');
  const before = enabledOutside;
  enabledOutside = on;
  return before;
}

function checkFn(fn: unknown, what: string): void {
  if (typeof fn !== 'function') throw new RnnkitError('ERR_RNNKIT_ARG', `${what} needs a function`);
}

/** Runs `fn` (sync or async) with recording off, for all it awaits; resolves to its result. */
export async function noGrad<T>(fn: () => T | Promise<T>): Promise<T> {
  checkFn(fn, 'noGrad');
  return mode.run(false, fn);
}

/** Runs a synchronous `fn` with recording off and returns its result. */
export function noGradSync<T>(fn: () => T): T {
  checkFn(fn, 'noGradSync');
  return mode.run(false, fn);
}

/** Runs `fn` (sync or async) with recording on, e.g. inside a `noGrad` scope. */
export async function enableGrad<T>(fn: () => T | Promise<T>): Promise<T> {
  checkFn(fn, 'enableGrad');
  return mode.run(true, fn);
}

/** @internal Runs `fn` with grad mode `on` (the backward runs with recording off). */
export function withGradMode<T>(on: boolean, fn: () => T): T {
  return mode.run(on, fn);
}
