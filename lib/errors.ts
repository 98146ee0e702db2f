/**
 * Stable error codes: users and outside checks may rely on these strings.
 *
 * Examples: [Errors](../README.md#errors).
 * @module
 */

/** The `code` of an RnnkitError: what kind of failure it is (stable across versions). */
export type RnnkitErrorCode =
  | 'ERR_RNNKIT_SHAPE'
  | 'ERR_RNNKIT_DTYPE'
  | 'ERR_RNNKIT_ARG'
  | 'ERR_RNNKIT_DISPOSED'
  | 'ERR_RNNKIT_DEVICE'
  | 'ERR_RNNKIT_OOM'
  | 'ERR_RNNKIT_CUDA'
  | 'ERR_RNNKIT_LOAD'
  | 'ERR_RNNKIT_NONFINITE'
  /** A file system call failed (a checkpoint that cannot be written or read). */
  | 'ERR_RNNKIT_IO'
  /** The autograd tape cannot run: its graph was freed, or a saved tensor was modified in place. */
  | 'ERR_RNNKIT_AUTOGRAD'
  /** A collective or rendezvous between processes failed: a dead or hung peer, ranks that disagree, a backend that cannot load. */
  | 'ERR_RNNKIT_DIST'
  | 'ERR_RNNKIT_INTERNAL';

// A string for any value, without letting a caller's toString throw (messages and codes only).
function text(v: unknown): string {
  if (typeof v === 'string') return v;
  try {
    return String(v);
  } catch {
    return '(a value that cannot be printed)';
  }
}

/** The one error class of rnnkit, raised from TypeScript and from native code alike. */
export class RnnkitError extends Error {
  /** One of the stable codes of `RnnkitErrorCode` (`ERR_RNNKIT_SHAPE`, ...). */
  readonly code: string;

  /** `options.cause` keeps the error this one replaces (a throwing getter's, a file system's). */
  constructor(code: RnnkitErrorCode | string, message: string, options?: { cause?: unknown }) {
    let cause: { cause: unknown } | undefined;
    try {
      cause = typeof options === 'object' && options !== null && 'cause' in options ? { cause: options.cause } : undefined;
    } catch {
      cause = undefined;
    }
    super(text(message), cause);
    this.name = 'RnnkitError';
    this.code = text(code);
  }
}
