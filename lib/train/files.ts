/**
 * File reads and writes of checkpoints and safetensors files, with typed errors: a missing file is
 * ERR_RNNKIT_ARG (nothing to load there), one too large to read ERR_RNNKIT_OOM (checked against
 * the allocation limit before reading), any other failure of the file system ERR_RNNKIT_IO with
 * its message and code. Writes go to a temporary name first and are renamed into place, so a
 * crash never leaves a half-written file under the real name.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RnnkitError } from '../errors';
import { argError, checkHostAllocation, describe } from '../args';

/** A file system failure as ERR_RNNKIT_IO (the system's error kept as `cause`). */
export function ioError(what: string, err: unknown): RnnkitError {
  const e = err as NodeJS.ErrnoException;
  return new RnnkitError('ERR_RNNKIT_IO', `${what}: ${e && e.message ? e.message : describe(err)}`, { cause: err });
}

/** The bytes of `file`; `missing` is the message when it (or a folder on its path) does not exist. */
export function readFileChecked(file: string, missing: string, call: string): Buffer {
  try {
    const stat = fs.statSync(file);
    if (!stat.isFile()) throw argError(`${missing}: ${file} is not a file`);
    checkHostAllocation(call, [{ what: file, floats: Math.ceil(stat.size / 4) }]);
    return fs.readFileSync(file);
  } catch (err) {
    if (err instanceof RnnkitError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') throw argError(`${missing}: ${file} does not exist`);
    if (err instanceof RangeError) throw new RnnkitError('ERR_RNNKIT_OOM', `cannot read ${file} (${err.message})`, { cause: err });
    throw ioError(`cannot read ${file}`, err);
  }
}

/** Writes `data` to `file` through a temporary file in the same folder and a rename. */
export function writeFileAtomic(file: string, data: Buffer | string): void {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    try {
      fs.rmSync(tmp, { force: true });
    } catch {
      // Nothing was written under that name (it may not even be a valid one).
    }
    throw ioError(`cannot write ${file}`, err);
  }
}
