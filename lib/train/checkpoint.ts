/**
 * Checkpoints: a directory holding
 *   model.safetensors      the parameters by name, float32 (PyTorch reads it with
 *                          safetensors.torch.load_file; name them like the PyTorch module's
 *                          state_dict and it loads with load_state_dict)
 *   optimizer.safetensors  the optimizer's state buffers, named `state.<param index>.<buffer>`
 *   checkpoint.json        format version, step, optimizer kind / hyperparameters / per-parameter
 *                          step counts, scheduler state, Rng state and the caller's `extra` JSON
 * Files are written under temporary names and renamed, so a crash leaves the previous checkpoint
 * whole. Loading copies the saved values into the given parameter tensors (shapes must match),
 * restores the optimizer and scheduler, and returns the step, a resumed Rng and `extra`: a run
 * resumed from it continues bit for bit on the CPU.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RnnkitError } from '../errors';
import { argError, readOptions, readRequiredOptions, readSeed } from '../args';
import { Tensor, checkTensor } from '../tensor';
import { hostValues, writeBack } from './native-train';
import { Optimizer, OptimizerStateDict, ParamState } from './optim';
import { Rng, RngState } from './random';
import { LRScheduler } from './schedule';
import { decodeSafetensors, encodeSafetensors, SafetensorsEntry } from './safetensors';

const FORMAT = 'rnnkit-checkpoint/1';
const CONTENTS_KEYS = ['params', 'optimizer', 'scheduler', 'step', 'rng', 'extra'] as const;
const LOAD_KEYS = ['params', 'optimizer', 'scheduler'] as const;

/** What `saveCheckpoint` writes. */
export interface CheckpointContents {
  /** The parameters, by name (PyTorch's names make the file loadable into torch). */
  params: Record<string, Tensor>;
  /** An optimizer whose state (moments, step counts, hyperparameters) is saved too. */
  optimizer?: Optimizer | null;
  /** A scheduler whose step count is saved too. */
  scheduler?: LRScheduler | null;
  /** The training step to resume from. */
  step?: number;
  /** A generator whose state is saved, so a resumed run draws the same numbers. */
  rng?: Rng | null;
  /** Any JSON-serialisable value (e.g. the model's configuration). */
  extra?: unknown;
}

/** What `loadCheckpoint` restores into. */
export interface LoadCheckpointOptions {
  /** Tensors to copy the saved parameters into (every name must be in the checkpoint). */
  params?: Record<string, Tensor>;
  /** An optimizer (over those parameters) to restore the saved state into. */
  optimizer?: Optimizer | null;
  /** A scheduler to restore the saved step count into. */
  scheduler?: LRScheduler | null;
}

/** What `loadCheckpoint` returns. */
export interface LoadedCheckpoint {
  /** Every saved parameter, by name. */
  tensors: Record<string, SafetensorsEntry>;
  /** The saved step (0 when none was saved). */
  step: number;
  /** The saved generator, restored (null when none was saved). */
  rng: Rng | null;
  /** The saved `extra` value. */
  extra: unknown;
}

interface Manifest {
  format: string;
  step: number;
  rng: RngState | null;
  extra: unknown;
  optimizer: { kind: string; groups: OptimizerStateDict['groups']; steps: Record<number, number> } | null;
  scheduler: { lastStep: number; baseLrs: number[] } | null;
}

function writeAtomic(file: string, data: Buffer | string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

/** Writes a checkpoint directory (created when missing). */
export function saveCheckpoint(dir: string, checkpoint: CheckpointContents): void {
  if (typeof dir !== 'string' || !dir) throw argError('saveCheckpoint needs a directory path');
  const contents = readRequiredOptions(checkpoint, CONTENTS_KEYS, 'checkpoint contents',
    'saveCheckpoint needs { params: Record<string, Tensor> }') as CheckpointContents;
  if (typeof contents.params !== 'object' || contents.params === null) {
    throw argError('saveCheckpoint needs { params: Record<string, Tensor> }');
  }
  const step = readSeed(contents.step, 'step', 0);
  const model: Record<string, SafetensorsEntry> = {};
  for (const [name, t] of Object.entries(contents.params)) {
    checkTensor(t, `params.${name}`);
    model[name] = { shape: t.shape.slice(), data: hostValues(t) };
  }
  let optimizer: Manifest['optimizer'] = null;
  const optimTensors: Record<string, SafetensorsEntry> = {};
  if (contents.optimizer) {
    const sd = contents.optimizer.stateDict();
    const steps: Record<number, number> = {};
    for (const [index, st] of Object.entries(sd.state)) {
      steps[Number(index)] = st.step;
      for (const [name, buf] of Object.entries(st.buffers)) optimTensors[`state.${index}.${name}`] = { shape: [buf.length], data: buf };
    }
    optimizer = { kind: sd.kind, groups: sd.groups, steps };
  }
  const manifest: Manifest = {
    format: FORMAT,
    step,
    rng: contents.rng ? contents.rng.state() : null,
    extra: contents.extra ?? null,
    optimizer,
    scheduler: contents.scheduler ? contents.scheduler.stateDict() : null,
  };
  fs.mkdirSync(dir, { recursive: true });
  writeAtomic(path.join(dir, 'model.safetensors'), encodeSafetensors(model, { format: 'pt' }));
  writeAtomic(path.join(dir, 'optimizer.safetensors'), encodeSafetensors(optimTensors));
  writeAtomic(path.join(dir, 'checkpoint.json'), JSON.stringify(manifest, null, 1));
}

/** Reads a checkpoint directory and restores what `options` names. */
export function loadCheckpoint(dir: string, loadOptions?: LoadCheckpointOptions): LoadedCheckpoint {
  const options = readOptions(loadOptions, LOAD_KEYS, 'loadCheckpoint options') as LoadCheckpointOptions;
  let manifest: Manifest;
  try {
    manifest = JSON.parse(fs.readFileSync(path.join(dir, 'checkpoint.json'), 'utf8')) as Manifest;
  } catch (err) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `no readable checkpoint in ${dir}: ${(err as Error).message}`);
  }
  if (!manifest || manifest.format !== FORMAT) throw new RnnkitError('ERR_RNNKIT_ARG', `${dir} is not an ${FORMAT} checkpoint`);
  const model = decodeSafetensors(fs.readFileSync(path.join(dir, 'model.safetensors'))).tensors;
  const targets = Object.entries(options.params ?? {});
  // Everything is checked before anything is written, so a mismatch leaves the tensors untouched.
  for (const [name, t] of targets) {
    checkTensor(t, `params.${name}`);
    const e = model[name];
    if (!e) throw new RnnkitError('ERR_RNNKIT_ARG', `the checkpoint has no parameter ${name}`);
    if (e.data.length !== t.size || e.shape.length !== t.shape.length || e.shape.some((d, k) => d !== t.shape[k])) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `parameter ${name} is [${e.shape.join(', ')}] in the checkpoint, [${t.shape.join(', ')}] here`);
    }
  }
  let optimState: OptimizerStateDict | null = null;
  if (options.optimizer) {
    if (!manifest.optimizer) throw new RnnkitError('ERR_RNNKIT_ARG', 'the checkpoint holds no optimizer state');
    const buffers = decodeSafetensors(fs.readFileSync(path.join(dir, 'optimizer.safetensors'))).tensors;
    const state: Record<number, ParamState> = {};
    for (const [index, step] of Object.entries(manifest.optimizer.steps)) state[Number(index)] = { step, buffers: {} };
    for (const [name, e] of Object.entries(buffers)) {
      const m = /^state\.(\d+)\.(\w+)$/.exec(name);
      if (!m || !state[Number(m[1])]) throw new RnnkitError('ERR_RNNKIT_ARG', `unexpected optimizer tensor ${name}`);
      state[Number(m[1])].buffers[m[2]] = e.data;
    }
    optimState = { kind: manifest.optimizer.kind, groups: manifest.optimizer.groups, state };
    options.optimizer.loadStateDict(optimState);
  }
  for (const [name, t] of targets) {
    const host = hostValues(t);
    host.set(model[name].data);
    writeBack(t, host);
  }
  if (options.scheduler) {
    if (!manifest.scheduler) throw new RnnkitError('ERR_RNNKIT_ARG', 'the checkpoint holds no scheduler state');
    options.scheduler.loadStateDict(manifest.scheduler);
  }
  return {
    tensors: model,
    step: manifest.step,
    rng: manifest.rng ? Rng.fromState(manifest.rng) : null,
    extra: manifest.extra,
  };
}
