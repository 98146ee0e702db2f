/**
 * State dicts to and from safetensors files (the format torch's `safetensors.torch.save_file` /
 * `load_file` read and write; encoder and decoder in lib/train/safetensors.ts). Tensors are
 * written as float32 under their names, in the order given, from wherever they live; loading
 * gives CPU tensors (F64 / F16 / BF16 converted to float32), ready for `loadStateDict`.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RnnkitError } from '../errors';
import { Tensor, checkTensor } from '../tensor';
import { decodeSafetensors, encodeSafetensors, SafetensorsEntry } from '../train/safetensors';

/** Writes name → tensor (e.g. `model.stateDict()`) to a safetensors file, atomically (temporary name, then rename). */
export function saveSafetensors(file: string, tensors: Record<string, Tensor>, metadata: Record<string, string> = {}): void {
  if (typeof file !== 'string' || file === '') throw new RnnkitError('ERR_RNNKIT_ARG', 'saveSafetensors needs a file path');
  if (tensors === null || typeof tensors !== 'object') throw new RnnkitError('ERR_RNNKIT_ARG', 'saveSafetensors needs a record of name -> Tensor');
  const entries: Record<string, SafetensorsEntry> = {};
  for (const [name, t] of Object.entries(tensors)) {
    checkTensor(t, `tensors.${name}`);
    entries[name] = { shape: t.shape.slice(), data: t.device === 'cpu' ? t.data : t.readSync() };
  }
  const bytes = encodeSafetensors(entries, { format: 'pt', ...metadata });
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.tmp-${process.pid}`);
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, file);
}

/** Reads a safetensors file as name → CPU tensor. */
export function loadSafetensors(file: string): Record<string, Tensor> {
  if (typeof file !== 'string' || file === '') throw new RnnkitError('ERR_RNNKIT_ARG', 'loadSafetensors needs a file path');
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `cannot read ${file}: ${(err as Error).message}`);
  }
  const out: Record<string, Tensor> = {};
  for (const [name, e] of Object.entries(decodeSafetensors(bytes).tensors)) out[name] = Tensor.fromCpu(e.data, e.shape);
  return out;
}
