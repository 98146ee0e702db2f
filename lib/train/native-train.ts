/**
 * The host round trip that lets every training op accept CUDA tensors: their values are read to
 * the CPU, the CPU kernel runs, and results are written back (there are no CUDA training kernels
 * yet, so this is correct but moves the data twice).
 */
import { uploadSync } from '../native';
import { Tensor } from '../tensor';

/** The values of a tensor on the host: a CPU tensor's own array, or a copy of a CUDA tensor's. */
export function hostValues(t: Tensor): Float32Array {
  return t.device === 'cpu' ? t.data : t.readSync();
}

/**
 * Writes host values computed for `t` back to it (nothing to copy for a CPU tensor's own array)
 * and records the in-place write in its version counter.
 */
export function writeBack(t: Tensor, host: Float32Array): void {
  if (t.device !== 'cpu') uploadSync(t.deviceBuffer, host);
  t.bumpVersion();
}
