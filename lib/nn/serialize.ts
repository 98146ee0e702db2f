/**
 * State dicts to and from safetensors files (the format torch's `safetensors.torch.save_file` /
 * `load_file` read and write; encoder and decoder in lib/train/safetensors.ts). Tensors are
 * written as float32 under their names, in the order given, from wherever they live; loading
 * gives CPU tensors (F64 / F16 / BF16 converted to float32), ready for `loadStateDict`.
 *
 * Examples: [Models: rk.nn and autograd](../../README.md#models-and-autograd).
 * @module
 */
import { RnnkitError } from '../errors';
import { readRecord } from '../args';
import { Tensor, checkTensor } from '../tensor';
import { decodeSafetensors, encodeSafetensors, SafetensorsEntry } from '../train/safetensors';
import { readFileChecked, writeFileAtomic } from '../train/files';

/** Writes name → tensor (e.g. `model.stateDict()`) to a safetensors file, atomically (temporary name, then rename). */
export function saveSafetensors(file: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  if (typeof file !== 'string' || file === '') throw new RnnkitError('ERR_RNNKIT_ARG', 'saveSafetensors needs a file path');
  if (tensors === null || typeof tensors !== 'object') throw new RnnkitError('ERR_RNNKIT_ARG', 'saveSafetensors needs a record of name -> Tensor');
  const entries: Record<string, SafetensorsEntry> = {};
  for (const [name, t] of Object.entries(readRecord(tensors, 'the tensors of saveSafetensors'))) {
    const tensor = checkTensor(t, `tensors.${name}`);
    Object.defineProperty(entries, name, {
      value: { shape: tensor.shape.slice(), data: tensor.device === 'cpu' ? tensor.data : tensor.readSync() }, enumerable: true,
    });
  }
  const bytes = encodeSafetensors(entries, { format: 'pt', ...readRecord(metadata, 'the metadata of saveSafetensors') } as Record<string, string>);
  writeFileAtomic(file, bytes);
}

/** Reads a safetensors file as name → CPU tensor. */
export function loadSafetensors(file: string): Record<string, Tensor> {
  if (typeof file !== 'string' || file === '') throw new RnnkitError('ERR_RNNKIT_ARG', 'loadSafetensors needs a file path');
  const bytes = readFileChecked(file, 'no safetensors file to load', 'loadSafetensors');
  const out: Record<string, Tensor> = {};
  for (const [name, e] of Object.entries(decodeSafetensors(bytes).tensors)) {
    Object.defineProperty(out, name, { value: Tensor.fromCpu(e.data, e.shape), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
