/**
 * Learning-rate schedules. Each is a pure function of the step count and a base learning rate
 * (each group's lr when the schedule was made): group.lr = lrAt(base, step), with no state but
 * the step, so a resumed run gets exactly the same rates. The constructor applies step 0;
 * `step()` advances by one (call it after each optimizer step).
 *   StepLR             factor = gamma^floor(step / stepSize)
 *   CosineAnnealingLR  lr = etaMin + (base − etaMin)·(1 + cos(π·min(step, tMax)/tMax))/2
 *   LinearWarmup       factor = startFactor + (1 − startFactor)·step/warmupSteps during the warm-up;
 *                      afterwards the `then` schedule's factor at (step − warmupSteps), or 1.
 * Composition is by `then` (a warm-up followed by a decay that starts where the warm-up ends).
 * `stateDict()` / `loadStateDict()` save and restore the step count.
 */
import { argError, isInstance, readArray, readGuarded, readInteger, readNumber, readRequiredOptions } from '../args';
import { Optimizer } from './optim';

const readCount = (v: unknown, what: string, min: number): number => readInteger(v, what, min, Number.MAX_SAFE_INTEGER);
const readRate = (v: unknown, what: string, fallback?: number): number => readNumber(v, what, { min: 0 }, fallback);

/** A schedule as a function: the learning rate at `step` for base rate `base`. */
export interface Schedule {
  /** The learning rate at `step` (0 = before the first optimizer step) for base rate `base`. */
  lrAt(base: number, step: number): number;
}

/** What a scheduler's `stateDict()` holds. */
export interface SchedulerState {
  /** Steps taken. */
  lastStep: number;
  /** Each param group's base lr. */
  baseLrs: number[];
}

/** A schedule that drives an optimizer's groups: each group's lr = lrAt(its base lr, step). */
export abstract class LRScheduler implements Schedule {
  /** Each param group's lr when the schedule was made. */
  readonly baseLrs: number[];
  private current = 0;

  /** The learning rate at `step` (an integer >= 0) for the base rate `base` (a finite number >= 0). */
  lrAt(base: number, step: number): number {
    return this.rateAt(readRate(base, 'base'), readCount(step, 'step', 0));
  }

  /** `lrAt` after its arguments are checked. */
  protected abstract rateAt(base: number, step: number): number;

  /** @param optimizer the optimizer whose groups it sets, or null for a schedule driven by another (`then`). */
  protected constructor(readonly optimizer: Optimizer | null) {
    if (new.target === LRScheduler) throw argError('LRScheduler is abstract: use StepLR, CosineAnnealingLR or LinearWarmup');
    if (optimizer !== null && !isInstance(optimizer, Optimizer)) {
      throw argError('optimizer must be an Optimizer (SGD, Adam, ...) or null');
    }
    this.baseLrs = optimizer ? optimizer.paramGroups.map((g) => g.hyper.lr as number) : [];
  }

  /** Steps taken so far. */
  get lastStep(): number {
    return this.current;
  }

  /** The learning rates of the groups now. */
  getLr(): number[] {
    return this.baseLrs.map((b) => this.lrAt(b, this.current));
  }

  /** Advances one step and sets the groups' rates (call it after each optimizer step). */
  step(): void {
    this.current += 1;
    this.apply();
  }

  /** The step count and base rates, for a checkpoint. */
  stateDict(): SchedulerState {
    return { lastStep: this.current, baseLrs: this.baseLrs.slice() };
  }

  /** Restores `stateDict()`'s step count (and base rates) and sets the groups' rates. */
  loadStateDict(stateDict: { lastStep: number; baseLrs?: number[] }): void {
    const sd = readRequiredOptions(stateDict, ['lastStep', 'baseLrs'], 'the scheduler state dict',
      'loadStateDict needs { lastStep, baseLrs? }');
    const lastStep = readCount(sd.lastStep, 'lastStep', 0);
    if (sd.baseLrs !== undefined) {
      const given = readArray(sd.baseLrs, 'baseLrs');
      if (given.length !== this.baseLrs.length) throw argError('the state dict has another number of param groups');
      const lrs = given.map((v: unknown) => readRate(v, 'baseLrs'));
      lrs.forEach((v, k) => (this.baseLrs[k] = v));
    }
    this.current = lastStep;
    this.apply();
  }

  /** Sets every group's lr for the current step. */
  protected apply(): void {
    if (!this.optimizer) return;
    this.optimizer.paramGroups.forEach((g, k) => {
      g.hyper.lr = this.lrAt(this.baseLrs[k], this.current);
    });
  }
}

/** lr = base · gamma^floor(step / stepSize). */
export class StepLR extends LRScheduler {
  /** Steps between two decays. */
  readonly stepSize: number;
  /** The factor of each decay (default 0.1). */
  readonly gamma: number;

  /**
   * Sets every group's lr to its step-0 value at once. Throws ERR_RNNKIT_ARG for a bad optimizer,
   * a stepSize that is not an integer >= 1, or a gamma that is not a finite number >= 0.
   *
   * @param optimizer The optimizer whose groups it sets, or null for a schedule driven by another (`then`).
   * @param options `stepSize`: steps between two decays; `gamma`: the factor of each decay (default 0.1).
   */
  constructor(optimizer: Optimizer | null, options: { stepSize: number; gamma?: number }) {
    super(optimizer);
    const o = readRequiredOptions(options, ['stepSize', 'gamma'], 'StepLR options', 'StepLR needs options { stepSize }');
    this.stepSize = readCount(o.stepSize, 'stepSize', 1);
    this.gamma = readRate(o.gamma, 'gamma', 0.1);
    this.apply();
  }

  protected rateAt(base: number, step: number): number {
    return base * Math.pow(this.gamma, Math.floor(step / this.stepSize));
  }
}

/** lr = etaMin + (base − etaMin)·(1 + cos(π·min(step, tMax)/tMax))/2. */
export class CosineAnnealingLR extends LRScheduler {
  /** Steps of the half cosine. */
  readonly tMax: number;
  /** The rate it ends at (default 0). */
  readonly etaMin: number;

  /**
   * Sets every group's lr to its step-0 value at once. Throws ERR_RNNKIT_ARG for a bad optimizer,
   * a tMax that is not an integer >= 1, or an etaMin that is not a finite number >= 0.
   *
   * @param optimizer The optimizer whose groups it sets, or null for a schedule driven by another (`then`).
   * @param options `tMax`: steps of the half cosine; `etaMin`: the rate it ends at (default 0).
   */
  constructor(optimizer: Optimizer | null, options: { tMax: number; etaMin?: number }) {
    super(optimizer);
    const o = readRequiredOptions(options, ['tMax', 'etaMin'], 'CosineAnnealingLR options', 'CosineAnnealingLR needs options { tMax }');
    this.tMax = readCount(o.tMax, 'tMax', 1);
    this.etaMin = readRate(o.etaMin, 'etaMin', 0);
    this.apply();
  }

  protected rateAt(base: number, step: number): number {
    const t = Math.min(step, this.tMax);
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * t) / this.tMax))) / 2;
  }
}

/** A linear warm-up from startFactor·base to base over warmupSteps, then the `then` schedule. */
export class LinearWarmup extends LRScheduler {
  /** Steps of the warm-up. */
  readonly warmupSteps: number;
  /** The factor at step 0 (default 0). */
  readonly startFactor: number;
  /** The schedule after the warm-up, counted from its end (null: the base rate). */
  readonly then: Schedule | null;

  /** `then` is applied after the warm-up (make it with a null optimizer: this schedule drives it). */
  constructor(optimizer: Optimizer | null, options: { warmupSteps: number; startFactor?: number; then?: Schedule }) {
    super(optimizer);
    const o = readRequiredOptions(options, ['warmupSteps', 'startFactor', 'then'], 'LinearWarmup options',
      'LinearWarmup needs options { warmupSteps }');
    this.warmupSteps = readCount(o.warmupSteps, 'warmupSteps', 1);
    this.startFactor = readNumber(o.startFactor, 'startFactor', { min: 0, max: 1 }, 0);
    const then = o.then as Schedule | null | undefined;
    if (then !== undefined && (then === null || typeof then !== 'object' || typeof readGuarded(() => then.lrAt, 'then') !== 'function')) {
      throw argError('then must be a schedule (StepLR, CosineAnnealingLR, ... made with a null optimizer)');
    }
    this.then = then ?? null;
    this.apply();
  }

  protected rateAt(base: number, step: number): number {
    if (step < this.warmupSteps) return base * (this.startFactor + ((1 - this.startFactor) * step) / this.warmupSteps);
    return this.then ? this.then.lrAt(base, step - this.warmupSteps) : base;
  }
}
