/** Stable error codes: users and outside checks may rely on these strings. */
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
  /** The autograd tape cannot run: its graph was freed, or a saved tensor was modified in place. */
  | 'ERR_RNNKIT_AUTOGRAD'
  /** A collective or rendezvous between processes failed: a dead or hung peer, ranks that disagree, a backend that cannot load. */
  | 'ERR_RNNKIT_DIST'
  | 'ERR_RNNKIT_INTERNAL';

/** The one error class of rnnkit, raised from TypeScript and from native code alike. */
export class RnnkitError extends Error {
  /** One of the stable codes of `RnnkitErrorCode` (`ERR_RNNKIT_SHAPE`, ...). */
  readonly code: string;

  constructor(code: RnnkitErrorCode | string, message: string) {
    super(message);
    this.name = 'RnnkitError';
    this.code = code;
  }
}
