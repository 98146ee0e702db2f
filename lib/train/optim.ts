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
 * float32, created on a parameter's first step, and kept on the host. Group hyperparameters may
 * be changed between steps (learning-rate schedules do). `stateDict()` / `loadStateDict()` copy
 * everything a bit-for-bit resume needs. The async step updates the parameters one after another
 * off the event loop; the parameters must not be read or written until it resolves.
 *
 * Consecutive parameters of a group that lie back to back in one CPU buffer (the PyTorch-named
 * views of a recurrent module's packed weights), with gradients back to back too, are updated by
 * one native call over the whole range, their state buffers being views of one packed buffer: the
 * updates are elementwise, so the result is the same, in one call instead of one per view.
 */
import { RnnkitError } from '../errors';
import { argError, readBoolean, readNumber, readOptions, readRequiredOptions } from '../args';
import { Tensor, checkTensor } from '../tensor';
import { native } from '../native';
import { hostValues, writeBack } from './native-train';
import { zeroGrads } from './grads';

export type Hyper = Record<string, number | boolean | number[]>;

export interface ParamGroup {
  params: Tensor[];
  [hyper: string]: unknown;
}

export type Grads = ReadonlyArray<Tensor | null | undefined> | Map<Tensor, Tensor>;

export interface ParamState {
  /** Steps taken by this parameter. */
  step: number;
  buffers: Record<string, Float32Array>;
}

export interface OptimizerStateDict {
  kind: string;
  /** Hyperparameters of each group, and the indices of its parameters (numbered across groups). */
  groups: Array<{ hyper: Hyper; params: number[] }>;
  /** By parameter index. */
  state: Record<number, ParamState>;
}

type Check = (v: unknown, name: string) => void;

const nonNegative: Check = (v, name) => readNumber(v, name, { min: 0 });
const positive: Check = (v, name) => readNumber(v, name, { above: 0 });
const unit: Check = (v, name) => readNumber(v, name, { min: 0, below: 1 });
const bool: Check = (v, name) => readBoolean(v, name);
const betas: Check = (v, name) => {
  if (!Array.isArray(v) || v.length !== 2) throw argError(`${name} must be [beta1, beta2]`);
  unit(v[0], `${name}[0]`);
  unit(v[1], `${name}[1]`);
};

interface Spec {
  defaults: Hyper;
  checks: Record<string, Check>;
}

interface Slot {
  param: Tensor;
  group: Hyper;
  index: number;
}

export abstract class Optimizer {
  readonly paramGroups: Array<{ params: Tensor[]; hyper: Hyper }>;
  protected readonly state = new Map<Tensor, ParamState>();
  private readonly slots: Slot[] = [];
  /** The slots in runs of back-to-back parameters (computed at the first step). */
  private runs: Slot[][] | null = null;

  protected constructor(readonly kind: string, private readonly spec: Spec, groups: ParamGroup[] | Tensor[], defaults: Record<string, unknown>) {
    if (!Array.isArray(groups) || groups.length === 0) throw argError(`${kind} needs a list of parameters or param groups`);
    const base = this.resolve(spec.defaults, defaults, `${kind} options`);
    const list: ParamGroup[] = groups.every((g) => g instanceof Tensor) ? [{ params: groups as Tensor[] }] : (groups as ParamGroup[]);
    const seen = new Set<Tensor>();
    this.paramGroups = list.map((g, gi) => {
      if (g === null || typeof g !== 'object' || !Array.isArray(g.params)) throw argError(`param group ${gi} needs params: Tensor[]`);
      const hyper = this.resolve(base, g, `param group ${gi}`, ['params']);
      const params = g.params;
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
    for (const w of this.updates(grads)) {
      await this.update(w.p, w.g, w.st, w.group, true);
      w.done();
    }
  }

  stepSync(grads?: Grads): void {
    for (const w of this.updates(grads)) {
      this.update(w.p, w.g, w.st, w.group, false);
      w.done();
    }
  }

  /** Zeroes every parameter's `.grad` in place, or drops it with `{ setToNone: true }`. */
  zeroGrad(options?: { setToNone?: boolean }): void {
    zeroGrads(this.params, options);
  }

  stateDict(): OptimizerStateDict {
    const state: Record<number, ParamState> = {};
    for (const s of this.slots) {
      const st = this.state.get(s.param);
      if (!st) continue;
      const buffers: Record<string, Float32Array> = {};
      for (const [k, v] of Object.entries(st.buffers)) buffers[k] = v.slice();
      state[s.index] = { step: st.step, buffers };
    }
    let next = 0;
    const groups = this.paramGroups.map((g) => ({
      hyper: JSON.parse(JSON.stringify(g.hyper)) as Hyper,
      params: g.params.map(() => next++),
    }));
    return { kind: this.kind, groups, state };
  }

  loadStateDict(stateDict: OptimizerStateDict): void {
    const sd = readRequiredOptions(stateDict, ['kind', 'groups', 'state'], 'the optimizer state dict',
      `loadStateDict needs the stateDict() of a ${this.kind}`) as Partial<OptimizerStateDict>;
    if (sd.kind !== this.kind) throw argError(`state dict of ${String(sd.kind)} given to ${this.kind}`);
    if (!Array.isArray(sd.groups) || sd.groups.length !== this.paramGroups.length ||
      sd.groups.some((g, k) => !Array.isArray(g.params) || g.params.length !== this.paramGroups[k].params.length)) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', 'the state dict has other param groups than this optimizer');
    }
    const hypers = sd.groups.map((g, k) => this.resolve(this.spec.defaults, g.hyper, `state dict group ${k}`));
    if (typeof sd.state !== 'object' || sd.state === null) throw argError('the state dict has no state record');
    const saved = sd.state;
    const states = new Map<Tensor, ParamState>();
    for (const s of this.slots) {
      const st = saved[s.index];
      if (st === undefined) continue;
      if (!Number.isSafeInteger(st.step) || st.step < 0) throw argError(`state ${s.index}: bad step count`);
      const buffers: Record<string, Float32Array> = {};
      for (const [k, v] of Object.entries(st.buffers)) {
        if (!(v instanceof Float32Array) || v.length !== s.param.size) {
          throw new RnnkitError('ERR_RNNKIT_SHAPE', `state ${s.index}.${k} must hold ${s.param.size} float32 values`);
        }
        buffers[k] = v.slice();
      }
      states.set(s.param, { step: st.step, buffers });
    }
    this.paramGroups.forEach((g, k) => {
      for (const key of Object.keys(g.hyper)) delete g.hyper[key];
      Object.assign(g.hyper, hypers[k]);
    });
    this.state.clear();
    for (const [p, st] of states) this.state.set(p, st);
  }

  /** The state of one parameter (null before its first step). */
  stateOf(param: Tensor): ParamState | null {
    return this.state.get(param) ?? null;
  }

  /** Creates the state buffers of a parameter before its first step. */
  protected abstract initState(size: number, hyper: Hyper): Record<string, Float32Array>;

  protected abstract update(p: Float32Array, g: Float32Array, st: ParamState, hyper: Hyper, async: boolean): Promise<void> | void;

  private checked(name: string, value: unknown, where: string): number | boolean | number[] {
    const check = Object.prototype.hasOwnProperty.call(this.spec.checks, name) ? this.spec.checks[name] : undefined;
    if (!check) {
      throw argError(`${where}: ${this.kind} has no hyperparameter '${name}' (allowed: ${Object.keys(this.spec.checks).join(', ')})`);
    }
    check(value, name);
    return Array.isArray(value) ? value.slice() : (value as number | boolean);
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
    } else if (grads instanceof Map) {
      const known = new Set(this.slots.map((s) => s.param));
      for (const p of grads.keys()) if (!known.has(p)) throw argError('grads hold a tensor that is not a parameter of this optimizer');
      for (const s of this.slots) {
        const g = grads.get(s.param);
        if (g) out.push([s, g]);
      }
    } else if (Array.isArray(grads)) {
      if (grads.length !== this.slots.length) {
        throw new RnnkitError('ERR_RNNKIT_SHAPE', `grads must list ${this.slots.length} tensors (null to skip), got ${grads.length}`);
      }
      grads.forEach((g, k) => {
        if (g !== null && g !== undefined) out.push([this.slots[k], g]);
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
    let st = this.state.get(slot.param);
    if (!st) {
      st = { step: 0, buffers: this.initState(slot.param.size, slot.group) };
      this.state.set(slot.param, st);
    }
    st.step += 1;
    const p = hostValues(slot.param);
    return { p, g: hostValues(g), st, group: slot.group, done: () => writeBack(slot.param, p) };
  }

  /**
   * One update over a run of back-to-back parameters, or null when their gradients are not back
   * to back or their states differ (then each is updated on its own). The members' state buffers
   * become views of one packed buffer (copied in once, e.g. after loadStateDict).
   */
  private fuse(run: Slot[], gs: Tensor[]): Update | null {
    const g = joined(gs.map((t) => t.data));
    const p = joined(run.map((s) => s.param.data));
    if (!g || !p) return null;
    const sizes = run.map((s) => s.param.size);
    const states = run.map((s) => this.state.get(s.param));
    let buffers: Record<string, Float32Array>;
    if (states.every((st) => st === undefined)) {
      buffers = this.initState(p.length, run[0].group);
      run.forEach((s) => this.state.set(s.param, { step: 0, buffers: {} }));
    } else {
      const first = states[0];
      const keys = first ? Object.keys(first.buffers).sort().join() : '';
      if (!states.every((st) => st && st.step === (first as ParamState).step && Object.keys(st.buffers).sort().join() === keys)) return null;
      buffers = {};
      for (const key of Object.keys((first as ParamState).buffers)) {
        const parts = states.map((st) => (st as ParamState).buffers[key]);
        buffers[key] = joined(parts) ?? packed(parts);
      }
    }
    const members = run.map((s) => this.state.get(s.param) as ParamState);
    const st: ParamState = { step: members[0].step + 1, buffers };
    const viewsOf = (): void => {
      for (const [key, all] of Object.entries(st.buffers)) {
        let at = 0;
        members.forEach((m, k) => {
          m.buffers[key] = all.subarray(at, at + sizes[k]);
          at += sizes[k];
        });
      }
    };
    members.forEach((m) => (m.step += 1));
    viewsOf();
    return {
      p, g, st, group: run[0].group,
      // Buffers an update creates on its first use (SGD's momentum, amsgrad's maximum) get views too.
      done: () => {
        viewsOf();
        run.forEach((s) => s.param.bumpVersion());
      },
    };
  }
}

/** A native update to run: p and g on the host, the state, the group, and what to do after. */
interface Update {
  p: Float32Array;
  g: Float32Array;
  st: ParamState;
  group: Hyper;
  done: () => void;
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

const num = (h: Hyper, k: string): number => h[k] as number;

export interface SgdOptions {
  lr?: number;
  momentum?: number;
  dampening?: number;
  weightDecay?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
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

  protected initState(size: number, hyper: Hyper): Record<string, Float32Array> {
    return num(hyper, 'momentum') !== 0 ? { momentumBuffer: new Float32Array(size) } : {};
  }

  protected update(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, async: boolean): Promise<void> | void {
    let buf = st.buffers.momentumBuffer ?? null;
    let first = false;
    if (num(h, 'momentum') !== 0 && !buf) {
      buf = st.buffers.momentumBuffer = new Float32Array(p.length);
      first = true;
    }
    // PyTorch starts the momentum buffer from the first gradient it sees.
    first = first || st.step === 1;
    return native().sgdStep(p, g, buf, num(h, 'lr'), num(h, 'momentum'), num(h, 'dampening'),
      num(h, 'weightDecay'), h.nesterov as boolean, first, async);
  }
}

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  weightDecay?: number;
  amsgrad?: boolean;
}

const adamChecks = { lr: nonNegative, betas, eps: positive, weightDecay: nonNegative, amsgrad: bool };

function adamInit(size: number, hyper: Hyper): Record<string, Float32Array> {
  const s: Record<string, Float32Array> = { expAvg: new Float32Array(size), expAvgSq: new Float32Array(size) };
  if (hyper.amsgrad) s.maxExpAvgSq = new Float32Array(size);
  return s;
}

function adamUpdate(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, decoupled: boolean, async: boolean): Promise<void> | void {
  const [b1, b2] = h.betas as number[];
  if (h.amsgrad && !st.buffers.maxExpAvgSq) st.buffers.maxExpAvgSq = new Float32Array(p.length);
  return native().adamStep(p, g, st.buffers.expAvg, st.buffers.expAvgSq, h.amsgrad ? st.buffers.maxExpAvgSq : null,
    num(h, 'lr'), b1, b2, num(h, 'eps'), num(h, 'weightDecay'), st.step, decoupled, async);
}

export class Adam extends Optimizer {
  constructor(groups: ParamGroup[] | Tensor[], defaults: AdamOptions = {}) {
    super('Adam', { defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false }, checks: adamChecks },
      groups, defaults as Record<string, unknown>);
  }

  protected initState(size: number, hyper: Hyper): Record<string, Float32Array> {
    return adamInit(size, hyper);
  }

  protected update(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, async: boolean): Promise<void> | void {
    return adamUpdate(p, g, st, h, false, async);
  }
}

/** Adam with decoupled weight decay (p ← p·(1 − lr·wd) before the Adam update). */
export class AdamW extends Optimizer {
  constructor(groups: ParamGroup[] | Tensor[], defaults: AdamOptions = {}) {
    super('AdamW', { defaults: { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2, amsgrad: false }, checks: adamChecks },
      groups, defaults as Record<string, unknown>);
  }

  protected initState(size: number, hyper: Hyper): Record<string, Float32Array> {
    return adamInit(size, hyper);
  }

  protected update(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, async: boolean): Promise<void> | void {
    return adamUpdate(p, g, st, h, true, async);
  }
}

export interface AdagradOptions {
  lr?: number;
  lrDecay?: number;
  weightDecay?: number;
  initialAccumulatorValue?: number;
  eps?: number;
}

export class Adagrad extends Optimizer {
  constructor(groups: ParamGroup[] | Tensor[], defaults: AdagradOptions = {}) {
    super('Adagrad', {
      defaults: { lr: 1e-2, lrDecay: 0, weightDecay: 0, initialAccumulatorValue: 0, eps: 1e-10 },
      checks: { lr: nonNegative, lrDecay: nonNegative, weightDecay: nonNegative, initialAccumulatorValue: nonNegative, eps: positive },
    }, groups, defaults as Record<string, unknown>);
  }

  protected initState(size: number, hyper: Hyper): Record<string, Float32Array> {
    return { sum: new Float32Array(size).fill(num(hyper, 'initialAccumulatorValue')) };
  }

  protected update(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, async: boolean): Promise<void> | void {
    return native().adagradStep(p, g, st.buffers.sum, num(h, 'lr'), num(h, 'lrDecay'), num(h, 'weightDecay'),
      num(h, 'eps'), st.step, async);
  }
}

export interface RmspropOptions {
  lr?: number;
  alpha?: number;
  eps?: number;
  weightDecay?: number;
  momentum?: number;
  centered?: boolean;
}

export class RMSprop extends Optimizer {
  constructor(groups: ParamGroup[] | Tensor[], defaults: RmspropOptions = {}) {
    super('RMSprop', {
      defaults: { lr: 1e-2, alpha: 0.99, eps: 1e-8, weightDecay: 0, momentum: 0, centered: false },
      checks: { lr: nonNegative, alpha: unit, eps: positive, weightDecay: nonNegative, momentum: nonNegative, centered: bool },
    }, groups, defaults as Record<string, unknown>);
  }

  protected initState(size: number, hyper: Hyper): Record<string, Float32Array> {
    const s: Record<string, Float32Array> = { squareAvg: new Float32Array(size) };
    if (num(hyper, 'momentum') > 0) s.momentumBuffer = new Float32Array(size);
    if (hyper.centered) s.gradAvg = new Float32Array(size);
    return s;
  }

  protected update(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, async: boolean): Promise<void> | void {
    const b = st.buffers;
    if (num(h, 'momentum') > 0 && !b.momentumBuffer) b.momentumBuffer = new Float32Array(p.length);
    if (h.centered && !b.gradAvg) b.gradAvg = new Float32Array(p.length);
    return native().rmspropStep(p, g, b.squareAvg, h.centered ? b.gradAvg : null,
      num(h, 'momentum') > 0 ? b.momentumBuffer : null, num(h, 'lr'), num(h, 'alpha'), num(h, 'eps'),
      num(h, 'weightDecay'), num(h, 'momentum'), async);
  }
}
