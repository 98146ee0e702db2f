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
import {
  argError, describe, readInstanceOrNull, readOptions, readRecord, readRequiredOptions, readSeed,
} from '../args';
import { Tensor, checkTensor } from '../tensor';
import { hostValues, writeBack } from './native-train';
import { Optimizer, OptimizerStateDict, ParamState } from './optim';
import { Rng, RngState } from './random';
import { LRScheduler } from './schedule';
import { decodeSafetensors, encodeSafetensors, SafetensorsEntry } from './safetensors';
import { ioError, readFileChecked, writeFileAtomic } from './files';

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

/** The bytes of `name` in checkpoint `dir` (lib/train/files.ts for the errors). */
function readCheckpointFile(dir: string, name: string): Buffer {
  return readFileChecked(path.join(dir, name), `no readable checkpoint in ${dir}`, 'loadCheckpoint');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The manifest of a checkpoint, its fields checked so that a damaged file is refused with ERR_RNNKIT_ARG. */
function readManifest(dir: string): Manifest {
  const text = readCheckpointFile(dir, 'checkpoint.json').toString('utf8');
  let m: unknown;
  try {
    m = JSON.parse(text);
  } catch (err) {
    throw argError(`no readable checkpoint in ${dir}: checkpoint.json is not JSON (${(err as Error).message})`);
  }
  checkManifest(m, dir);
  return m;
}

/** Refuses a manifest with a missing or damaged field (ERR_RNNKIT_ARG naming it). */
function checkManifest(m: unknown, dir: string): asserts m is Manifest {
  const bad = (field: string): RnnkitError => argError(`${dir}/checkpoint.json: ${field} is damaged`);
  if (!isObject(m) || m.format !== FORMAT) throw argError(`${dir} is not an ${FORMAT} checkpoint`);
  if (typeof m.step !== 'number' || !Number.isSafeInteger(m.step) || m.step < 0) throw bad('step');
  if (m.rng !== null && !Array.isArray(m.rng)) throw bad('rng');
  if (m.scheduler !== null && !isObject(m.scheduler)) throw bad('scheduler');
  if (m.optimizer !== null) {
    const o = m.optimizer;
    if (!isObject(o) || typeof o.kind !== 'string' || !Array.isArray(o.groups) || !isObject(o.steps)) throw bad('optimizer');
    for (const [index, step] of Object.entries(o.steps)) {
      if (!/^\d+$/.test(index) || typeof step !== 'number' || !Number.isSafeInteger(step) || step < 0) throw bad('optimizer.steps');
    }
  }
}

/** Writes a checkpoint directory (created when missing). */
export function saveCheckpoint(dir: string, checkpoint: CheckpointContents): void {
  if (typeof dir !== 'string' || !dir) throw argError('saveCheckpoint needs a directory path');
  const contents = readRequiredOptions(checkpoint, CONTENTS_KEYS, 'checkpoint contents',
    'saveCheckpoint needs { params: Record<string, Tensor> }');
  const params = readRecord(contents.params, 'checkpoint params');
  const step = readSeed(contents.step, 'step', 0);
  const optimizerGiven = readInstanceOrNull(contents.optimizer, Optimizer, 'optimizer', 'an Optimizer');
  const schedulerGiven = readInstanceOrNull(contents.scheduler, LRScheduler, 'scheduler', 'an LRScheduler');
  const rngGiven = readInstanceOrNull(contents.rng, Rng, 'rng', 'an Rng');
  const model: Record<string, SafetensorsEntry> = {};
  for (const [name, t] of Object.entries(params)) {
    const tensor = checkTensor(t, `params.${name}`);
    model[name] = { shape: tensor.shape.slice(), data: hostValues(tensor) };
  }
  let optimizer: Manifest['optimizer'] = null;
  const optimTensors: Record<string, SafetensorsEntry> = {};
  if (optimizerGiven !== null) {
    const sd = optimizerGiven.stateDict();
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
    rng: rngGiven !== null ? rngGiven.state() : null,
    extra: contents.extra ?? null,
    optimizer,
    scheduler: schedulerGiven !== null ? schedulerGiven.stateDict() : null,
  };
  let json: string;
  try {
    json = JSON.stringify(manifest, null, 1);
  } catch (err) {
    throw new RnnkitError('ERR_RNNKIT_ARG', `extra must be JSON-serialisable: ${(err as Error).message}`, { cause: err });
  }
  if (json === undefined) throw argError('extra must be JSON-serialisable');
  const modelBytes = encodeSafetensors(model, { format: 'pt' });
  const optimBytes = encodeSafetensors(optimTensors);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (err) {
    throw ioError(`cannot create ${dir}`, err);
  }
  writeFileAtomic(path.join(dir, 'model.safetensors'), modelBytes);
  writeFileAtomic(path.join(dir, 'optimizer.safetensors'), optimBytes);
  writeFileAtomic(path.join(dir, 'checkpoint.json'), json);
}

/** Reads a checkpoint directory and restores what `options` names. */
export function loadCheckpoint(dir: string, loadOptions?: LoadCheckpointOptions): LoadedCheckpoint {
  if (typeof dir !== 'string' || !dir) throw argError(`loadCheckpoint needs a directory path (got ${describe(dir)})`);
  const options = readOptions(loadOptions, LOAD_KEYS, 'loadCheckpoint options');
  const optimizerTarget = readInstanceOrNull(options.optimizer, Optimizer, 'optimizer', 'an Optimizer');
  const schedulerTarget = readInstanceOrNull(options.scheduler, LRScheduler, 'scheduler', 'an LRScheduler');
  const manifest = readManifest(dir);
  const model = decodeSafetensors(readCheckpointFile(dir, 'model.safetensors')).tensors;
  const given = options.params === undefined ? {} : readRecord(options.params, 'loadCheckpoint params');
  const targets = Object.entries(given).map(([name, t]): [string, Tensor] => [name, checkTensor(t, `params.${name}`)]);
  // Everything is checked before anything is written, so a mismatch leaves the tensors untouched.
  for (const [name, t] of targets) {
    const e = Object.prototype.hasOwnProperty.call(model, name) ? model[name] : undefined;
    if (!e) throw new RnnkitError('ERR_RNNKIT_ARG', `the checkpoint has no parameter ${name}`);
    if (e.data.length !== t.size || e.shape.length !== t.shape.length || e.shape.some((d, k) => d !== t.shape[k])) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `parameter ${name} is [${e.shape.join(', ')}] in the checkpoint, [${t.shape.join(', ')}] here`);
    }
  }
  if (schedulerTarget !== null && !manifest.scheduler) throw new RnnkitError('ERR_RNNKIT_ARG', 'the checkpoint holds no scheduler state');
  if (optimizerTarget !== null) {
    if (!manifest.optimizer) throw new RnnkitError('ERR_RNNKIT_ARG', 'the checkpoint holds no optimizer state');
    const buffers = decodeSafetensors(readCheckpointFile(dir, 'optimizer.safetensors')).tensors;
    const state: Record<number, ParamState> = {};
    for (const [index, step] of Object.entries(manifest.optimizer.steps)) state[Number(index)] = { step, buffers: {} };
    for (const [name, e] of Object.entries(buffers)) {
      const m = /^state\.(\d+)\.(\w+)$/.exec(name);
      if (!m || !Object.prototype.hasOwnProperty.call(state, m[1])) throw new RnnkitError('ERR_RNNKIT_ARG', `unexpected optimizer tensor ${name}`);
      state[Number(m[1])].buffers[m[2]] = e.data;
    }
    const optimState: OptimizerStateDict = { kind: manifest.optimizer.kind, groups: manifest.optimizer.groups, state };
    optimizerTarget.loadStateDict(optimState);
  }
  if (schedulerTarget !== null) schedulerTarget.loadStateDict(manifest.scheduler as Manifest['scheduler'] & object);
  for (const [name, t] of targets) {
    const host = hostValues(t);
    host.set(model[name].data);
    writeBack(t, host);
  }
  return {
    tensors: model,
    step: manifest.step,
    rng: manifest.rng ? Rng.fromState(manifest.rng) : null,
    extra: manifest.extra,
  };
}
