/**
 * Optimizers with PyTorch semantics (torch.optim: SGD, Adam, AdamW, Adagrad, RMSprop) that update
 * parameter tensors in place with the fused native steps of native/kernels/train.h (the update
 * formulas are written there).
 *
 * Contract: `new Adam(groups, defaults)` where `groups` is a list of tensors or of param groups
 * `{ params: Tensor[], ...hyperparameters }` (a group's own values override `defaults`, which
 * override PyTorch's defaults). `step(grads)` / `stepSync(grads)` update every parameter whose
 * gradient is given: `grads` lists one gradient tensor (or null to skip) per parameter, in group
 * order, or maps parameters to gradients; without `grads` each parameter's own `.grad` is used
 * (parameters whose `.grad` is null are skipped), which is how `model.parameters()` trains after
 * `loss.backward()`. `zeroGrad()` zeroes those `.grad`s. State (moments, buffers, per-parameter step counts) is
 * float32, created on a parameter's first step, and kept on the parameter's device. Group
 * hyperparameters may be changed between steps (learning-rate schedules do). `stateDict()` /
 * `loadStateDict()` copy everything a bit-for-bit resume needs (to and from the host). The async
 * step updates the parameters one after another off the event loop; the parameters must not be
 * read or written until it resolves.
 *
 * Consecutive parameters of a group that lie back to back in one CPU buffer (the PyTorch-named
 * views of a recurrent module's packed weights), with gradients back to back too, are updated by
 * one native call over the whole range, their state buffers being views of one packed buffer: the
 * updates are elementwise, so the result is the same, in one call instead of one per view.
 *
 * Devices: a parameter on a CUDA device is updated there by the CUDA step kernels (the same bits
 * as the CPU kernels) with its state on that device: no host copy. A gradient on another device
 * than its parameter is copied over first, and `lastRun.fallback` says so.
 */
import { Device } from '../device';
import { RnnkitError } from '../errors';
import {
  allocFloats, argError, copyOf, describe, isInstance, readArray, readBoolean, readGuarded, readNumber, readOptions, readRecord,
  readRequiredOptions,
} from '../args';
import { DeviceBuffer } from '../native';
import { MaybePromise } from '../nn/maybe';
import { recordRun } from '../run-info';
import { Tensor, checkTensor, full, isTensor, tensor } from '../tensor';
import { StepKernels, cpuSteps, cudaSteps } from './native-train';
import { zeroGrads } from './grads';

/**
 * The hyperparameters of a param group once checked, by name (`lr`, `momentum`, `betas`, ...):
 * numbers, flags, or number pairs (Adam's `betas`). Every optimizer's names are those of its
 * options interface (SgdOptions, AdamOptions, AdagradOptions, RmspropOptions).
 */
export type Hyper = Record<string, number | boolean | number[]>;

/**
 * A param group as given to an optimizer's constructor: its parameters and any hyperparameters of
 * the optimizer's options (e.g. `{ params: [w], lr: 0.1 }`), which override the constructor's
 * defaults for this group. Unknown hyperparameter names throw ERR_RNNKIT_ARG.
 */
export interface ParamGroup {
  /** The parameter tensors of the group, updated in place; a tensor may appear in one group only. */
  params: Tensor[];
  /** Hyperparameters of this group (names and ranges as in the optimizer's options). */
  [hyper: string]: unknown;
}

/**
 * The gradients given to `step`: one tensor per parameter in group order (null or undefined skips
 * that parameter; the list must have one entry per parameter, else ERR_RNNKIT_SHAPE), or a Map from
 * parameters to their gradients (parameters left out are skipped). Each gradient holds as many
 * values as its parameter.
 */
export type Grads = ReadonlyArray<Tensor | null | undefined> | Map<Tensor, Tensor>;

/** The state of one parameter as saved: host arrays (state dicts, checkpoints). */
export interface ParamState {
  /** Steps taken by this parameter. */
  step: number;
  /**
   * The state buffers by name, each holding one float per element of the parameter: `momentumBuffer`
   * (SGD, RMSprop with momentum), `expAvg`, `expAvgSq`, `maxExpAvgSq` (Adam/AdamW, the last with
   * amsgrad), `sum` (Adagrad), `squareAvg`, `gradAvg` (RMSprop, the last when centered).
   */
  buffers: Record<string, Float32Array>;
}

/** The live state of one parameter: its buffers on the parameter's device. */
export interface LiveParamState {
  /** Steps taken by this parameter. */
  step: number;
  /** A Float32Array for a CPU parameter, a Tensor on the parameter's device for a CUDA one. */
  buffers: Record<string, Float32Array | Tensor>;
  /** The parameter's device, where the buffers are. */
  readonly device: Device;
  /** Elements of the parameter (and of each buffer). */
  readonly size: number;
}

/** What the last `step` ran. */
export interface OptimizerRunInfo {
  /** The call: a step (async or Sync). */
  op: 'step';
  /** The devices whose step kernels ran (those of the updated parameters). */
  devices: Device[];
  /** Why data moved between host and device (a gradient on another device); null when none did. */
  fallback: string | null;
}

/**
 * One parameter's step on its device (what an Optimizer subclass's `update` receives), over buffers `B` of that device (Float32Array on the CPU,
 * DeviceBuffer on CUDA): the step kernels, the parameter, its gradient and its state buffers.
 */
export interface StepArgs<B> {
  /** The step kernels of the parameter's device. */
  kernels: StepKernels<B>;
  /** The parameter, updated in place. */
  p: B;
  /** Its gradient. */
  g: B;
  /** The state buffer `name`, created (filled with `init`) on the parameter's device when missing. */
  buffer(name: string, init?: number): B;
}

/** One native update (of a parameter, or of a run of back-to-back CPU parameters), ready to run. */
interface Update {
  device: Device;
  /** A copy of the gradient made for this update (disposed after the step). */
  moved: Tensor | null;
  fallback: string | null;
  run(async: boolean): MaybePromise<void>;
  /** After the run: version counters bumped (and a fused run's state views made). */
  done(): void;
}

/** Everything a bit-for-bit resume of an optimizer needs, on the host (`stateDict()`, `loadStateDict()`). */
export interface OptimizerStateDict {
  /** The optimizer's name (`SGD`, `Adam`, `AdamW`, `Adagrad`, `RMSprop`); loading into another kind throws ERR_RNNKIT_ARG. */
  kind: string;
  /** Hyperparameters of each group, and the indices of its parameters (numbered across groups). */
  groups: Array<{
    /** The group's hyperparameters. */
    hyper: Hyper;
    /** The indices of the group's parameters (keys of `state`). */
    params: number[];
  }>;
  /** By parameter index. */
  state: Record<number, ParamState>;
}

/** Checks one hyperparameter value; throws ERR_RNNKIT_ARG naming it when the value is out of range. */
export type HyperCheck = (v: unknown, name: string) => void;

const nonNegative: HyperCheck = (v, name) => readNumber(v, name, { min: 0 });
const positive: HyperCheck = (v, name) => readNumber(v, name, { above: 0 });
const unit: HyperCheck = (v, name) => readNumber(v, name, { min: 0, below: 1 });
const bool: HyperCheck = (v, name) => readBoolean(v, name);
const betas: HyperCheck = (v, name) => {
  const pair = readArray(v, name);
  if (pair.length !== 2) throw argError(`${name} must be [beta1, beta2]`);
  unit(pair[0], `${name}[0]`);
  unit(pair[1], `${name}[1]`);
};

/** What a concrete optimizer declares to its base class: its hyperparameters' defaults and checks. */
export interface OptimizerSpec {
  /** The default value of every hyperparameter (PyTorch's defaults). */
  defaults: Hyper;
  /** The check of every hyperparameter, by name; names without a check are refused. */
  checks: Record<string, HyperCheck>;
}

interface Slot {
  param: Tensor;
  group: Hyper;
  index: number;
}

/**
 * The base of the optimizers: param groups with checked hyperparameters, per-parameter state on
 * the parameter's device, the async and sync step, zeroGrad and the state dict. A concrete
 * optimizer implements `update`, one parameter's native step. Constructing `Optimizer` itself
 * throws ERR_RNNKIT_ARG.
 */
export abstract class Optimizer {
  /**
   * The groups in the order given: each one's parameters (a copy of the list) and its checked
   * hyperparameters (`hyper`), which may be changed between steps (what the LR schedulers do).
   */
  readonly paramGroups: Array<{
    /** The group's parameters. */
    params: Tensor[];
    /** The group's hyperparameters: the constructor's defaults overridden by the group's own values. */
    hyper: Hyper;
  }>;
  /** What the last `step` / `stepSync` ran (null before the first). */
  lastRun: OptimizerRunInfo | null = null;
  /** The live state of every parameter that has taken a step, by parameter. */
  protected readonly state = new Map<Tensor, LiveParamState>();
  private readonly slots: Slot[] = [];
  /** The slots in runs of back-to-back CPU parameters (computed at the first step). */
  private runs: Slot[][] | null = null;

  /**
   * Checks the parameters and hyperparameters. `groups` is a list of tensors (one group) or of
   * param groups; `defaults` overrides `spec.defaults` and a group's own values override both.
   * Throws ERR_RNNKIT_ARG for an empty list, a non-tensor, a parameter given twice, an unknown
   * hyperparameter or one out of range.
   *
   * @param kind The optimizer's name (`stateDict().kind`).
   * @param spec The hyperparameters' defaults and checks.
   */
  protected constructor(
    /** The optimizer's name: `SGD`, `Adam`, `AdamW`, `Adagrad` or `RMSprop`. */
    readonly kind: string,
    private readonly spec: OptimizerSpec, groups: ParamGroup[] | Tensor[], defaults: Record<string, unknown>) {
    if (new.target === Optimizer) throw argError('Optimizer is abstract: use SGD, Adam, AdamW, Adagrad or RMSprop');
    const given = readGuarded(() => Array.isArray(groups), 'the parameters') ? readArray(groups, 'the parameters') : null;
    if (given === null || given.length === 0) throw argError(`${kind} needs a list of parameters or param groups`);
    const base = this.resolve(spec.defaults, defaults, `${kind} options`);
    const list: Array<Record<string, unknown>> = given.every(isTensor) ? [{ params: given }]
      : given.map((g, gi) => readRecord(g, `param group ${gi}`));
    const seen = new Set<Tensor>();
    this.paramGroups = list.map((g, gi) => {
      if (!readGuarded(() => Array.isArray(g.params), `param group ${gi}`)) throw argError(`param group ${gi} needs params: Tensor[]`);
      const hyper = this.resolve(base, g, `param group ${gi}`, ['params']);
      const params = readArray(g.params, `param group ${gi} params`) as Tensor[];
      for (const p of params) {
        checkTensor(p, `param group ${gi} parameter`);
        if (seen.has(p)) throw argError('a parameter appears in more than one place');
        seen.add(p);
        this.slots.push({ param: p, group: hyper, index: this.slots.length });
      }
      return { params: params.slice(), hyper };
    });
  }

  /** All parameters, in group order (the order `grads` lists them in). */
  get params(): Tensor[] {
    return this.slots.map((s) => s.param);
  }

  /** Sets a hyperparameter (e.g. lr) of every group, checked like the constructor's. */
  set(name: string, value: number | boolean | number[]): void {
    for (const g of this.paramGroups) g.hyper[name] = this.checked(name, value, 'set');
  }

  /** Updates the parameters from `grads`, or from their `.grad` when `grads` is absent. */
  async step(grads?: Grads): Promise<void> {
    const updates: Update[] = [];
    try {
      for (const u of this.updates(grads)) {
        updates.push(u);
        await u.run(true);
        u.done();
      }
    } finally {
      this.finish(updates);
    }
  }

  /** The synchronous twin of `step`: updates the parameters on the calling thread. */
  stepSync(grads?: Grads): void {
    const updates: Update[] = [];
    try {
      for (const u of this.updates(grads)) {
        updates.push(u);
        u.run(false);
        u.done();
      }
    } finally {
      this.finish(updates);
    }
  }

  /** Zeroes every parameter's `.grad` in place, or drops it with `{ setToNone: true }`. */
  zeroGrad(options?: { setToNone?: boolean }): void {
    zeroGrads(this.params, options);
  }

  /**
   * A copy on the host of the hyperparameters of every group and the state (step count and
   * buffers) of every parameter that has taken a step: what `loadStateDict` needs to continue
   * bit for bit.
   */
  stateDict(): OptimizerStateDict {
    const state: Record<number, ParamState> = {};
    for (const s of this.slots) {
      const st = this.state.get(s.param);
      if (!st) continue;
      const buffers: Record<string, Float32Array> = {};
      for (const [k, v] of Object.entries(st.buffers)) buffers[k] = v instanceof Tensor ? v.readSync() : v.slice();
      state[s.index] = { step: st.step, buffers };
    }
    let next = 0;
    const groups = this.paramGroups.map((g) => ({
      hyper: JSON.parse(JSON.stringify(g.hyper)) as Hyper,
      params: g.params.map(() => next++),
    }));
    return { kind: this.kind, groups, state };
  }

  /**
   * Replaces the hyperparameters and the state with those of `stateDict` (from `stateDict()` of an
   * optimizer of the same kind over parameters of the same sizes), copied onto each parameter's
   * device. Throws ERR_RNNKIT_ARG for another kind or a bad entry, ERR_RNNKIT_SHAPE for other
   * param groups or buffers of the wrong size; every check runs before anything is replaced.
   */
  loadStateDict(stateDict: OptimizerStateDict): void {
    const sd = readRequiredOptions(stateDict, ['kind', 'groups', 'state'], 'the optimizer state dict',
      `loadStateDict needs the stateDict() of a ${this.kind}`);
    if (sd.kind !== this.kind) throw argError(`state dict of ${typeof sd.kind === 'string' ? sd.kind : 'another kind'} given to ${this.kind}`);
    const groups = readGuarded(() => Array.isArray(sd.groups), 'the state dict groups')
      ? readArray(sd.groups, 'the state dict groups').map((g, k) => readRecord(g, `state dict group ${k}`)) : null;
    const sizes = groups?.map((g) => (readGuarded(() => Array.isArray(g.params), 'a group') ? readArray(g.params, 'a group').length : -1));
    if (groups === null || sizes === undefined || groups.length !== this.paramGroups.length ||
      sizes.some((n, k) => n !== this.paramGroups[k].params.length)) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', 'the state dict has other param groups than this optimizer');
    }
    const hypers = groups.map((g, k) => this.resolve(this.spec.defaults, g.hyper, `state dict group ${k}`));
    const saved = readRecord(sd.state, 'the state record of the state dict');
    const checked: Array<[Slot, ParamState]> = [];
    for (const s of this.slots) {
      if (!Object.prototype.hasOwnProperty.call(saved, String(s.index)) || saved[s.index] === undefined) continue;
      const st = readRecord(saved[s.index], `state ${s.index}`);
      if (typeof st.step !== 'number' || !Number.isSafeInteger(st.step) || st.step < 0) throw argError(`state ${s.index}: bad step count`);
      const buffers = readRecord(st.buffers, `state ${s.index}.buffers`);
      for (const [k, v] of Object.entries(buffers)) {
        if (!isInstance(v, Float32Array) || v.length !== s.param.size) {
          throw new RnnkitError('ERR_RNNKIT_SHAPE', `state ${s.index}.${k} must hold ${s.param.size} float32 values`);
        }
      }
      checked.push([s, { step: st.step, buffers: buffers as Record<string, Float32Array> }]);
    }
    const states = new Map<Tensor, LiveParamState>();
    for (const [s, st] of checked) {
      const device = s.param.device;
      const buffers: Record<string, Float32Array | Tensor> = {};
      for (const [k, v] of Object.entries(st.buffers)) {
        const copy = copyOf(v, `state ${s.index}.${k}`);
        buffers[k] = device === 'cpu' ? copy : tensor(copy, [v.length], { device });
      }
      states.set(s.param, { step: st.step, buffers, device, size: s.param.size });
    }
    this.paramGroups.forEach((g, k) => {
      for (const key of Object.keys(g.hyper)) delete g.hyper[key];
      Object.assign(g.hyper, hypers[k]);
    });
    for (const old of this.state.values()) disposeBuffers(old);
    this.state.clear();
    for (const [p, st] of states) this.state.set(p, st);
  }

  /** The live state of one parameter (null before its first step): buffers on its device. */
  stateOf(param: Tensor): LiveParamState | null {
    return this.state.get(param) ?? null;
  }

  /** One parameter's step (`a.buffer` creates the state it needs on first use). */
  protected abstract update<B>(a: StepArgs<B>, st: LiveParamState, hyper: Hyper, async: boolean): MaybePromise<void>;

  private checked(name: string, value: unknown, where: string): number | boolean | number[] {
    const check = typeof name === 'string' && Object.prototype.hasOwnProperty.call(this.spec.checks, name) ? this.spec.checks[name] : undefined;
    if (!check) {
      throw argError(`${where}: ${this.kind} has no hyperparameter ${describe(name)} (allowed: ${Object.keys(this.spec.checks).join(', ')})`);
    }
    check(value, name);
    return Array.isArray(value) ? (readArray(value, name) as number[]) : (value as number | boolean);
  }

  /** `base` overridden by the hyperparameters in `over` (unknown keys refused, each checked). */
  private resolve(base: Hyper, over: unknown, where: string, extraKeys: readonly string[] = []): Hyper {
    const o = readOptions(over, [...Object.keys(this.spec.checks), ...extraKeys], where) as Record<string, unknown>;
    const out: Hyper = { ...base };
    for (const [k, v] of Object.entries(o)) if (v !== undefined && !extraKeys.includes(k)) out[k] = this.checked(k, v, where);
    return out;
  }

  private pairs(grads: Grads | undefined): Array<[Slot, Tensor]> {
    const out: Array<[Slot, Tensor]> = [];
    if (grads === undefined) {
      for (const s of this.slots) if (s.param.grad) out.push([s, s.param.grad]);
    } else if (isInstance(grads, Map)) {
      const known = new Set(this.slots.map((s) => s.param));
      const entries = readGuarded(() => [...(grads as Map<unknown, unknown>).entries()], 'grads');
      for (const [p] of entries) if (!known.has(p as Tensor)) throw argError('grads hold a tensor that is not a parameter of this optimizer');
      const byParam = new Map(entries);
      for (const s of this.slots) {
        const g = byParam.get(s.param);
        if (g !== null && g !== undefined) out.push([s, g as Tensor]);
      }
    } else if (readGuarded(() => Array.isArray(grads), 'grads')) {
      const list = readArray(grads, 'grads');
      if (list.length !== this.slots.length) {
        throw new RnnkitError('ERR_RNNKIT_SHAPE', `grads must list ${this.slots.length} tensors (null to skip), got ${list.length}`);
      }
      list.forEach((g, k) => {
        if (g !== null && g !== undefined) out.push([this.slots[k], g as Tensor]);
      });
    } else {
      throw argError('grads must be an array of tensors or a Map from parameters to gradients');
    }
    for (const [s, g] of out) {
      checkTensor(g, `gradient of parameter ${s.index}`);
      s.param.assertLive(`parameter ${s.index}`);
      if (g.size !== s.param.size) {
        throw new RnnkitError('ERR_RNNKIT_SHAPE', `gradient of parameter ${s.index} holds ${g.size} values, the parameter ${s.param.size}`);
      }
      if (g === s.param) throw argError(`gradient of parameter ${s.index} is the parameter itself`);
    }
    return out;
  }

  /** The native updates of a step, in parameter order, each prepared just before it runs. */
  private *updates(grads: Grads | undefined): Generator<Update> {
    const gradOf = new Map(this.pairs(grads));
    this.runs ??= backToBackRuns(this.slots, (a, b) => a.group === b.group && a.param.device === 'cpu' &&
      b.param.device === 'cpu' && joined([a.param.data, b.param.data]) !== null);
    for (const run of this.runs) {
      const gs = run.map((s) => gradOf.get(s));
      const fused = run.length > 1 && gs.every((g) => g && g.device === 'cpu') ? this.fuse(run, gs as Tensor[]) : null;
      if (fused) {
        yield fused;
        continue;
      }
      for (const [k, slot] of run.entries()) {
        const g = gs[k];
        if (g) yield this.prepare(slot, g);
      }
    }
  }

  private prepare(slot: Slot, g: Tensor): Update {
    const param = slot.param;
    let st = this.state.get(param);
    if (!st) {
      st = { step: 0, buffers: {}, device: param.device, size: param.size };
      this.state.set(param, st);
    }
    st.step += 1;
    let moved: Tensor | null = null;
    let fallback: string | null = null;
    if (g.device !== param.device) {
      moved = g.to(param.device);
      fallback = `the gradient of parameter ${slot.index} was on ${g.device}: copied to ${param.device}`;
    }
    const grad = moved ?? g;
    const live = st;
    const run = param.device === 'cpu'
      ? (async: boolean) => this.update(hostArgs(param.data, grad.data, live), live, slot.group, async)
      : (async: boolean) => this.update(deviceArgs(param, grad, live), live, slot.group, async);
    return { device: param.device, moved, fallback, run, done: () => param.bumpVersion() };
  }

  /**
   * One update over a run of back-to-back CPU parameters, or null when their gradients are not
   * back to back or their states differ (then each is updated on its own). The members' state
   * buffers become views of one packed buffer (copied in once, e.g. after loadStateDict).
   */
  private fuse(run: Slot[], gs: Tensor[]): Update | null {
    const g = joined(gs.map((t) => t.data));
    const p = joined(run.map((s) => s.param.data));
    if (!g || !p) return null;
    const sizes = run.map((s) => s.param.size);
    const states = run.map((s) => this.state.get(s.param));
    const buffers: Record<string, Float32Array> = {};
    if (states.every((st) => st === undefined)) {
      run.forEach((s) => this.state.set(s.param, { step: 0, buffers: {}, device: 'cpu', size: s.param.size }));
    } else {
      const first = states[0];
      const keys = first ? Object.keys(first.buffers).sort().join() : '';
      if (!states.every((st) => st && st.step === (first as LiveParamState).step && Object.keys(st.buffers).sort().join() === keys)) {
        return null;
      }
      for (const key of Object.keys((first as LiveParamState).buffers)) {
        const parts = states.map((st) => (st as LiveParamState).buffers[key] as Float32Array);
        buffers[key] = joined(parts) ?? packed(parts);
      }
    }
    const members = run.map((s) => this.state.get(s.param) as LiveParamState);
    const st: LiveParamState = { step: members[0].step + 1, buffers, device: 'cpu', size: p.length };
    const viewsOf = (): void => {
      for (const [key, all] of Object.entries(st.buffers)) {
        let at = 0;
        members.forEach((m, k) => {
          m.buffers[key] = (all as Float32Array).subarray(at, at + sizes[k]);
          at += sizes[k];
        });
      }
    };
    members.forEach((m) => (m.step += 1));
    viewsOf();
    return {
      device: 'cpu', moved: null, fallback: null,
      run: (async) => this.update(hostArgs(p, g, st), st, run[0].group, async),
      // Buffers an update creates on its first use (SGD's momentum, amsgrad's maximum) get views too.
      done: () => {
        viewsOf();
        run.forEach((s) => s.param.bumpVersion());
      },
    };
  }

  private finish(updates: Update[]): void {
    for (const u of updates) if (u.moved) u.moved.dispose();
    const devices = [...new Set(updates.map((u) => u.device))];
    const reasons = updates.map((u) => u.fallback).filter((r): r is string => r !== null);
    const fallback = reasons.length ? reasons.join('; ') : null;
    this.lastRun = { op: 'step', devices, fallback };
    for (const d of devices) recordRun(`${this.kind}.step`, d, fallback);
  }
}

function hostArgs(p: Float32Array, g: Float32Array, st: LiveParamState): StepArgs<Float32Array> {
  return {
    kernels: cpuSteps, p, g,
    buffer(name, init = 0) {
      let b = st.buffers[name];
      if (b === undefined) b = st.buffers[name] = allocFloats(st.size, 'an optimizer state buffer', 'step').fill(init);
      return b instanceof Tensor ? b.data : b;
    },
  };
}

function deviceArgs(param: Tensor, grad: Tensor, st: LiveParamState): StepArgs<DeviceBuffer> {
  return {
    kernels: cudaSteps, p: param.deviceBuffer, g: grad.deviceBuffer,
    buffer(name, init = 0) {
      let b = st.buffers[name];
      if (b === undefined) b = st.buffers[name] = full([st.size], init, { device: st.device });
      if (!(b instanceof Tensor)) throw new RnnkitError('ERR_RNNKIT_INTERNAL', `state ${name} of a ${st.device} parameter is on the host`);
      return b.deviceBuffer;
    },
  };
}

/** Slots cut into runs of consecutive ones that `together(previous, next)` accepts. */
function backToBackRuns(slots: readonly Slot[], together: (a: Slot, b: Slot) => boolean): Slot[][] {
  const runs: Slot[][] = [];
  for (const s of slots) {
    const last = runs[runs.length - 1];
    if (last && together(last[last.length - 1], s)) last.push(s);
    else runs.push([s]);
  }
  return runs;
}

/** One Float32Array over arrays that lie back to back in one buffer, or null when they do not. */
function joined(parts: readonly Float32Array[]): Float32Array | null {
  let end = parts[0].byteOffset;
  let length = 0;
  for (const a of parts) {
    if (a.buffer !== parts[0].buffer || a.byteOffset !== end) return null;
    end += a.byteLength;
    length += a.length;
  }
  return new Float32Array(parts[0].buffer, parts[0].byteOffset, length);
}

/** A new array holding the parts one after another. */
function packed(parts: readonly Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of parts) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

function disposeBuffers(st: LiveParamState): void {
  for (const b of Object.values(st.buffers)) if (b instanceof Tensor) b.dispose();
}

const num = (h: Hyper, k: string): number => h[k] as number;

/** Hyperparameters of SGD (torch.optim.SGD; the update is written in native/kernels/train.h). */
export interface SgdOptions {
  /** Learning rate, >= 0 (default 1e-3). */
  lr?: number;
  /** Momentum factor, >= 0 (default 0: no momentum buffer). */
  momentum?: number;
  /** Dampening of the momentum, >= 0 (default 0). */
  dampening?: number;
  /** L2 penalty added to the gradient (g + weightDecay·p), >= 0 (default 0). */
  weightDecay?: number;
  /** Nesterov momentum (default false); needs momentum > 0 and dampening 0, else ERR_RNNKIT_ARG. */
  nesterov?: boolean;
}

/** Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay (PyTorch semantics). */
export class SGD extends Optimizer {
  /**
   * @param groups The parameters, or param groups with their own hyperparameters.
   * @param defaults Hyperparameters for every group (PyTorch's defaults where absent).
   * @throws RnnkitError ERR_RNNKIT_ARG for bad parameters or hyperparameters.
   */
  constructor(groups: ParamGroup[] | Tensor[], defaults: SgdOptions = {}) {
    super('SGD', {
      defaults: { lr: 1e-3, momentum: 0, dampening: 0, weightDecay: 0, nesterov: false },
      checks: { lr: nonNegative, momentum: nonNegative, dampening: nonNegative, weightDecay: nonNegative, nesterov: bool },
    }, groups, defaults as Record<string, unknown>);
    for (const g of this.paramGroups) {
      if (g.hyper.nesterov && (num(g.hyper, 'momentum') <= 0 || num(g.hyper, 'dampening') !== 0)) {
        throw argError('nesterov needs momentum > 0 and dampening 0');
      }
    }
  }

  protected update<B>(a: StepArgs<B>, st: LiveParamState, h: Hyper, async: boolean): MaybePromise<void> {
    const momentum = num(h, 'momentum');
    // PyTorch starts the momentum buffer from the first gradient it sees (also when momentum is
    // turned on after the first step).
    const has = st.buffers.momentumBuffer !== undefined;
    const first = st.step === 1 || (momentum !== 0 && !has);
    const buf = momentum !== 0 || has ? a.buffer('momentumBuffer') : null;
    return a.kernels.sgdStep(a.p, a.g, buf, num(h, 'lr'), momentum, num(h, 'dampening'), num(h, 'weightDecay'),
      h.nesterov as boolean, first, async);
  }
}

/** Hyperparameters of Adam and AdamW (torch.optim.Adam / AdamW; the update is written in native/kernels/train.h). */
export interface AdamOptions {
  /** Learning rate, >= 0 (default 1e-3). */
  lr?: number;
  /** The decay rates [β1, β2] of the first and second moment estimates, each in [0, 1) (default [0.9, 0.999]). */
  betas?: [number, number];
  /** Added to the denominator for stability, > 0 (default 1e-8). */
  eps?: number;
  /** Weight decay, >= 0: an L2 term in the gradient for Adam (default 0), decoupled p·(1 − lr·wd) for AdamW (default 1e-2). */
  weightDecay?: number;
  /** Use the maximum of the second moment estimates so far (AMSGrad; default false). */
  amsgrad?: boolean;
}

const adamChecks = { lr: nonNegative, betas, eps: positive, weightDecay: nonNegative, amsgrad: bool };

/** The step of Adam and AdamW, which differ only in how weight decay applies. */
abstract class AdamBase extends Optimizer {
  protected abstract readonly decoupled: boolean;

  protected update<B>(a: StepArgs<B>, st: LiveParamState, h: Hyper, async: boolean): MaybePromise<void> {
    const [b1, b2] = h.betas as number[];
    return a.kernels.adamStep(a.p, a.g, a.buffer('expAvg'), a.buffer('expAvgSq'), h.amsgrad ? a.buffer('maxExpAvgSq') : null,
      num(h, 'lr'), b1, b2, num(h, 'eps'), num(h, 'weightDecay'), st.step, this.decoupled, async);
  }
}

/** Adam (Kingma and Ba), with weight decay as an L2 term in the gradient and optional AMSGrad (PyTorch semantics). */
export class Adam extends AdamBase {
  /** False: weight decay is added to the gradient (AdamW decouples it). */
  protected readonly decoupled = false;

  /**
   * @param groups The parameters, or param groups with their own hyperparameters.
   * @param defaults Hyperparameters for every group (PyTorch's defaults where absent).
   * @throws RnnkitError ERR_RNNKIT_ARG for bad parameters or hyperparameters.
   */
  constructor(groups: ParamGroup[] | Tensor[], defaults: AdamOptions = {}) {
    super('Adam', { defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false }, checks: adamChecks },
      groups, defaults as Record<string, unknown>);
  }
}

/** Adam with decoupled weight decay (p ← p·(1 − lr·wd) before the Adam update). */
export class AdamW extends AdamBase {
  /** True: weight decay scales the parameter before the Adam update. */
  protected readonly decoupled = true;

  /**
   * @param groups The parameters, or param groups with their own hyperparameters.
   * @param defaults Hyperparameters for every group (PyTorch's defaults, weightDecay 1e-2, where absent).
   * @throws RnnkitError ERR_RNNKIT_ARG for bad parameters or hyperparameters.
   */
  constructor(groups: ParamGroup[] | Tensor[], defaults: AdamOptions = {}) {
    super('AdamW', { defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false }, checks: adamChecks },
      groups, defaults as Record<string, unknown>);
  }
}

/** Hyperparameters of Adagrad (torch.optim.Adagrad; the update is written in native/kernels/train.h). */
export interface AdagradOptions {
  /** Learning rate, >= 0 (default 1e-2). */
  lr?: number;
  /** Learning-rate decay, >= 0: step t uses lr / (1 + (t − 1)·lrDecay) (default 0). */
  lrDecay?: number;
  /** L2 penalty added to the gradient, >= 0 (default 0). */
  weightDecay?: number;
  /** Starting value of the sum of squared gradients, >= 0 (default 0). */
  initialAccumulatorValue?: number;
  /** Added to the denominator for stability, > 0 (default 1e-10). */
  eps?: number;
}

/** Adagrad: per-element learning rates from the running sum of squared gradients (PyTorch semantics). */
export class Adagrad extends Optimizer {
  /**
   * @param groups The parameters, or param groups with their own hyperparameters.
   * @param defaults Hyperparameters for every group (PyTorch's defaults where absent).
   * @throws RnnkitError ERR_RNNKIT_ARG for bad parameters or hyperparameters.
   */
  constructor(groups: ParamGroup[] | Tensor[], defaults: AdagradOptions = {}) {
    super('Adagrad', {
      defaults: { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10 },
      checks: { lr: nonNegative, lrDecay: nonNegative, weightDecay: nonNegative, initialAccumulatorValue: nonNegative, eps: positive },
    }, groups, defaults as Record<string, unknown>);
  }

  protected update<B>(a: StepArgs<B>, st: LiveParamState, h: Hyper, async: boolean): MaybePromise<void> {
    return a.kernels.adagradStep(a.p, a.g, a.buffer('sum', num(h, 'initialAccumulatorValue')), num(h, 'lr'), num(h, 'lrDecay'),
      num(h, 'weightDecay'), num(h, 'eps'), st.step, async);
  }
}

/** Hyperparameters of RMSprop (torch.optim.RMSprop; the update is written in native/kernels/train.h). */
export interface RmspropOptions {
  /** Learning rate, >= 0 (default 1e-2). */
  lr?: number;
  /** Smoothing constant of the squared-gradient average, in [0, 1) (default 0.99). */
  alpha?: number;
  /** Added to the denominator for stability, > 0 (default 1e-8). */
  eps?: number;
  /** L2 penalty added to the gradient, >= 0 (default 0). */
  weightDecay?: number;
  /** Momentum factor, >= 0 (default 0: no momentum buffer). */
  momentum?: number;
  /** Normalize by the variance estimate (the average gradient subtracted) instead of the raw second moment (default false). */
  centered?: boolean;
}

/** RMSprop, optionally centered and with momentum (PyTorch semantics). */
export class RMSprop extends Optimizer {
  /**
   * @param groups The parameters, or param groups with their own hyperparameters.
   * @param defaults Hyperparameters for every group (PyTorch's defaults where absent).
   * @throws RnnkitError ERR_RNNKIT_ARG for bad parameters or hyperparameters.
   */
  constructor(groups: ParamGroup[] | Tensor[], defaults: RmspropOptions = {}) {
    super('RMSprop', {
      defaults: { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false },
      checks: { lr: nonNegative, alpha: unit, eps: positive, weightDecay: nonNegative, momentum: nonNegative, centered: bool },
    }, groups, defaults as Record<string, unknown>);
  }

  protected update<B>(a: StepArgs<B>, _st: LiveParamState, h: Hyper, async: boolean): MaybePromise<void> {
    const momentum = num(h, 'momentum');
    return a.kernels.rmspropStep(a.p, a.g, a.buffer('squareAvg'), h.centered ? a.buffer('gradAvg') : null,
      momentum > 0 ? a.buffer('momentumBuffer') : null, num(h, 'lr'), num(h, 'alpha'), num(h, 'eps'),
      num(h, 'weightDecay'), momentum, async);
  }
}
