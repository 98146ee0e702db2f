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
import { RnnkitError } from '../errors';
import { Optimizer } from './optim';

function argError(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_ARG', message);
}

function checkCount(v: unknown, what: string, min: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min) throw argError(`${what} must be an integer >= ${min} (got ${String(v)})`);
  return v;
}

function checkFinite(v: unknown, what: string, min = 0): number {
  if (typeof v !== 'number' || !(v >= min && v < Infinity)) throw argError(`${what} must be a finite number >= ${min} (got ${String(v)})`);
  return v;
}

/** A schedule as a function: the learning rate at `step` for base rate `base`. */
export interface Schedule {
  lrAt(base: number, step: number): number;
}

export abstract class LRScheduler implements Schedule {
  readonly baseLrs: number[];
  private current = 0;

  protected constructor(readonly optimizer: Optimizer | null) {
    this.baseLrs = optimizer ? optimizer.paramGroups.map((g) => g.hyper.lr as number) : [];
  }

  abstract lrAt(base: number, step: number): number;

  /** Steps taken so far. */
  get lastStep(): number {
    return this.current;
  }

  /** The learning rates of the groups now. */
  getLr(): number[] {
    return this.baseLrs.map((b) => this.lrAt(b, this.current));
  }

  step(): void {
    this.current += 1;
    this.apply();
  }

  stateDict(): { lastStep: number; baseLrs: number[] } {
    return { lastStep: this.current, baseLrs: this.baseLrs.slice() };
  }

  loadStateDict(sd: { lastStep: number; baseLrs?: number[] }): void {
    this.current = checkCount(sd && sd.lastStep, 'lastStep', 0);
    if (sd.baseLrs) {
      if (sd.baseLrs.length !== this.baseLrs.length) throw argError('the state dict has another number of param groups');
      sd.baseLrs.forEach((v, k) => (this.baseLrs[k] = checkFinite(v, 'baseLrs')));
    }
    this.apply();
  }

  protected apply(): void {
    if (!this.optimizer) return;
    this.optimizer.paramGroups.forEach((g, k) => {
      g.hyper.lr = this.lrAt(this.baseLrs[k], this.current);
    });
  }
}

export class StepLR extends LRScheduler {
  readonly stepSize: number;
  readonly gamma: number;

  constructor(optimizer: Optimizer | null, options: { stepSize: number; gamma?: number }) {
    super(optimizer);
    this.stepSize = checkCount(options && options.stepSize, 'stepSize', 1);
    this.gamma = checkFinite(options.gamma ?? 0.1, 'gamma');
    this.apply();
  }

  lrAt(base: number, step: number): number {
    return base * Math.pow(this.gamma, Math.floor(step / this.stepSize));
  }
}

export class CosineAnnealingLR extends LRScheduler {
  readonly tMax: number;
  readonly etaMin: number;

  constructor(optimizer: Optimizer | null, options: { tMax: number; etaMin?: number }) {
    super(optimizer);
    this.tMax = checkCount(options && options.tMax, 'tMax', 1);
    this.etaMin = checkFinite(options.etaMin ?? 0, 'etaMin');
    this.apply();
  }

  lrAt(base: number, step: number): number {
    const t = Math.min(step, this.tMax);
    return this.etaMin + ((base - this.etaMin) * (1 + Math.cos((Math.PI * t) / this.tMax))) / 2;
  }
}

export class LinearWarmup extends LRScheduler {
  readonly warmupSteps: number;
  readonly startFactor: number;
  readonly then: Schedule | null;

  /** `then` is applied after the warm-up (make it with a null optimizer: this schedule drives it). */
  constructor(optimizer: Optimizer | null, options: { warmupSteps: number; startFactor?: number; then?: Schedule }) {
    super(optimizer);
    this.warmupSteps = checkCount(options && options.warmupSteps, 'warmupSteps', 1);
    this.startFactor = checkFinite(options.startFactor ?? 0, 'startFactor');
    if (this.startFactor > 1) throw argError('startFactor must be in [0, 1]');
    if (options.then !== undefined && (options.then === null || typeof options.then.lrAt !== 'function')) {
      throw argError('then must be a schedule (StepLR, CosineAnnealingLR, ... made with a null optimizer)');
    }
    this.then = options.then ?? null;
    this.apply();
  }

  lrAt(base: number, step: number): number {
    if (step < this.warmupSteps) return base * (this.startFactor + ((1 - this.startFactor) * step) / this.warmupSteps);
    return this.then ? this.then.lrAt(base, step - this.warmupSteps) : base;
  }
}
