/**
 * Optimizers with PyTorch semantics (torch.optim: SGD, Adam, AdamW, Adagrad, RMSprop) that update
 * parameter tensors in place with the fused native steps of native/kernels/train.h (the update
 * formulas are written there).
 *
 * Contract: `new Adam(groups, defaults)` where `groups` is a list of tensors or of param groups
 * `{ params: Tensor[], ...hyperparameters }` (a group's own values override `defaults`, which
 * override PyTorch's defaults). `step(grads)` / `stepSync(grads)` update every parameter whose
 * gradient is given: `grads` lists one gradient tensor (or null to skip) per parameter, in group
 * order, or maps parameters to gradients. State (moments, buffers, per-parameter step counts) is
 * float32, created on a parameter's first step, and kept on the host. Group hyperparameters may
 * be changed between steps (learning-rate schedules do). `stateDict()` / `loadStateDict()` copy
 * everything a bit-for-bit resume needs. The async step updates the parameters one after another
 * off the event loop; the parameters must not be read or written until it resolves.
 */
import { RnnkitError } from '../errors';
import {
  allocFloats, argError, describe, isInstance, readArray, readBoolean, readGuarded, readNumber, readOptions, readRecord, readRequiredOptions,
} from '../args';
import { Tensor, checkTensor, isTensor } from '../tensor';
import { native } from '../native';
import { hostValues, writeBack } from './native-train';

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
  const pair = readArray(v, name);
  if (pair.length !== 2) throw argError(`${name} must be [beta1, beta2]`);
  unit(pair[0], `${name}[0]`);
  unit(pair[1], `${name}[1]`);
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

  protected constructor(readonly kind: string, private readonly spec: Spec, groups: ParamGroup[] | Tensor[], defaults: Record<string, unknown>) {
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

  async step(grads: Grads): Promise<void> {
    for (const [slot, g] of this.pairs(grads)) {
      const { p, gh, st } = this.prepare(slot, g);
      await this.update(p, gh, st, slot.group, true);
      writeBack(slot.param, p);
    }
  }

  stepSync(grads: Grads): void {
    for (const [slot, g] of this.pairs(grads)) {
      const { p, gh, st } = this.prepare(slot, g);
      this.update(p, gh, st, slot.group, false);
      writeBack(slot.param, p);
    }
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
    const states = new Map<Tensor, ParamState>();
    for (const s of this.slots) {
      if (!Object.prototype.hasOwnProperty.call(saved, String(s.index)) || saved[s.index] === undefined) continue;
      const st = readRecord(saved[s.index], `state ${s.index}`);
      if (typeof st.step !== 'number' || !Number.isSafeInteger(st.step) || st.step < 0) throw argError(`state ${s.index}: bad step count`);
      const buffers: Record<string, Float32Array> = {};
      for (const [k, v] of Object.entries(readRecord(st.buffers, `state ${s.index}.buffers`))) {
        if (!isInstance(v, Float32Array) || v.length !== s.param.size) {
          throw new RnnkitError('ERR_RNNKIT_SHAPE', `state ${s.index}.${k} must hold ${s.param.size} float32 values`);
        }
        buffers[k] = v.slice();
      }
      states.set(s.param, { step: st.step as number, buffers });
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

  private pairs(grads: Grads): Array<[Slot, Tensor]> {
    const out: Array<[Slot, Tensor]> = [];
    if (isInstance(grads, Map)) {
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

  private prepare(slot: Slot, g: Tensor): { p: Float32Array; gh: Float32Array; st: ParamState } {
    let st = this.state.get(slot.param);
    if (!st) {
      st = { step: 0, buffers: this.initState(slot.param.size, slot.group) };
      this.state.set(slot.param, st);
    }
    st.step += 1;
    return { p: hostValues(slot.param), gh: hostValues(g), st };
  }
}

const num = (h: Hyper, k: string): number => h[k] as number;
/** A zeroed optimizer state buffer of `size` values (checked against the allocation limit). */
const stateBuffer = (size: number): Float32Array => allocFloats(size, 'an optimizer state buffer', 'step');

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
    return num(hyper, 'momentum') !== 0 ? { momentumBuffer: stateBuffer(size) } : {};
  }

  protected update(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, async: boolean): Promise<void> | void {
    let buf = st.buffers.momentumBuffer ?? null;
    let first = false;
    if (num(h, 'momentum') !== 0 && !buf) {
      buf = st.buffers.momentumBuffer = stateBuffer(p.length);
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
  const s: Record<string, Float32Array> = { expAvg: stateBuffer(size), expAvgSq: stateBuffer(size) };
  if (hyper.amsgrad) s.maxExpAvgSq = stateBuffer(size);
  return s;
}

function adamUpdate(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, decoupled: boolean, async: boolean): Promise<void> | void {
  const [b1, b2] = h.betas as number[];
  if (h.amsgrad && !st.buffers.maxExpAvgSq) st.buffers.maxExpAvgSq = stateBuffer(p.length);
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
    return { sum: stateBuffer(size).fill(num(hyper, 'initialAccumulatorValue')) };
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
    const s: Record<string, Float32Array> = { squareAvg: stateBuffer(size) };
    if (num(hyper, 'momentum') > 0) s.momentumBuffer = stateBuffer(size);
    if (hyper.centered) s.gradAvg = stateBuffer(size);
    return s;
  }

  protected update(p: Float32Array, g: Float32Array, st: ParamState, h: Hyper, async: boolean): Promise<void> | void {
    const b = st.buffers;
    if (num(h, 'momentum') > 0 && !b.momentumBuffer) b.momentumBuffer = stateBuffer(p.length);
    if (h.centered && !b.gradAvg) b.gradAvg = stateBuffer(p.length);
    return native().rmspropStep(p, g, b.squareAvg, h.centered ? b.gradAvg : null,
      num(h, 'momentum') > 0 ? b.momentumBuffer : null, num(h, 'lr'), num(h, 'alpha'), num(h, 'eps'),
      num(h, 'weightDecay'), num(h, 'momentum'), async);
  }
}
