/**
 * One code path for an op's async and Sync twins: a binding returns its value (Sync call) or a
 * Promise of it (async call), and `andThen` continues with either.
 */

/** A binding's result: the value (Sync call) or a Promise of it (async call). */
export type Maybe<T> = T | Promise<T>;

/** f applied to a binding's result, after it settles when it is a Promise. */
export function andThen<T, U>(v: Maybe<T>, f: (value: T) => Maybe<U>): Maybe<U> {
  return v instanceof Promise ? v.then(f) : f(v);
}
