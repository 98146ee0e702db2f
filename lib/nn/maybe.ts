/**
 * One code path for the async and the sync twin of an operation: native calls return a Promise
 * when asked to run off the event loop and a value otherwise, and `then` continues with either.
 */

/** A value, or a Promise of it (what a native call returns depending on its `async` flag). */
export type MaybePromise<T> = T | Promise<T>;

function isThenable<T>(v: MaybePromise<T>): v is Promise<T> {
  return v !== null && typeof v === 'object' && typeof (v as { then?: unknown }).then === 'function';
}

/** Continues with `f` now when `v` is a value, or after it resolves when it is a Promise. */
export function then<T, U>(v: MaybePromise<T>, f: (value: T) => MaybePromise<U>): MaybePromise<U> {
  return isThenable(v) ? v.then(f) : f(v);
}

/** All of `vs` (values or Promises) as one value, or one Promise when any of them is pending. */
export function all<T>(vs: ReadonlyArray<MaybePromise<T>>): MaybePromise<T[]> {
  return vs.some(isThenable) ? Promise.all(vs) : (vs as T[]).slice();
}

export { isThenable };
