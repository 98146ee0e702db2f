/**
 * The autograd tape (DESIGN §9).
 *
 * Recording: an operation whose inputs include a tensor that requires gradients, run while grad
 * mode is on (grad-mode.ts), calls `record()` with its own backward: a function of the gradients
 * of its outputs that returns the gradients of its inputs by running the op's native backward.
 * The outputs get the new node as `gradFn` and require gradients themselves.
 *
 * `backward()` on a scalar (or with an explicit `gradient`) finds every node the root depends
 * on, checks them all first (none freed, no saved tensor modified in place since its forward:
 * ERR_RNNKIT_AUTOGRAD), then runs them in reverse order of recording, which is a topological
 * order. Gradients arriving at an intermediate tensor from several consumers are summed; a
 * gradient reaching a leaf is added into its `.grad` (created at the first one). An op may instead
 * add its parameter gradient straight into the leaf's `.grad` (`ctx.accumulateInto`, e.g. GEMMs
 * and the recurrent backward with `accumulate`) and return ACCUMULATED. When the last contribution
 * of this backward to a leaf is in, its post-accumulate hooks run (they may return Promises, which
 * are not awaited there, so communication overlaps the rest of the backward). After the traversal
 * the callbacks queued with `queueCallback` run in order, each awaited (also those a hook queues
 * later, from its Promise's continuation); `backward()` resolves once every hook's and callback's
 * Promise has settled, and rejects with the first error. Each node
 * frees what it saved as soon as it has run, unless `retainGraph`; a later backward through it is
 * ERR_RNNKIT_AUTOGRAD.
 *
 * A gradient tensor handed on is never written in place unless the tape knows it is the only
 * reference to it: a result that shares storage with an incoming gradient or with another result
 * of the same node is copied before it is summed into or becomes a `.grad`.
 */
import { AsyncLocalStorage } from 'async_hooks';
import { RnnkitError } from '../errors';
import { Device } from '../device';
import { Tensor, full } from '../tensor';
import { isGradEnabled, withGradMode } from './grad-mode';
import { kernelsFor } from './kernels';
import { MaybePromise, isThenable } from './maybe';
import { readBoolean, readOptions } from '../args';

/** Returned for an input whose gradient the op has already added into the leaf's `.grad`. */
export const ACCUMULATED: unique symbol = Symbol('accumulated into .grad');

/** What a backward function returns for one input. */
export type InputGrad = Tensor | null | typeof ACCUMULATED;

/** What a backward function is told about its inputs. */
export interface BackwardContext {
  /** needs[k]: whether input k wants a gradient (it required gradients at the forward). */
  readonly needs: readonly boolean[];
  /** Whether to run off the event loop (the native calls' `async` flag). */
  readonly async: boolean;
  /** The graph is kept (`retainGraph`): return no tensor the node itself holds on to. */
  readonly retain: boolean;
  /**
   * The existing `.grad` of input k when it is a leaf that has one (add into it and return
   * ACCUMULATED), or null: return a new gradient tensor.
   */
  accumulateInto(k: number): Tensor | null;
}

/** An op's backward: the gradients of its outputs (null: none arrived) to those of its inputs. */
export type BackwardFn = (grads: ReadonlyArray<Tensor | null>, ctx: BackwardContext) => MaybePromise<ReadonlyArray<InputGrad>>;

/** Options of `tensor.backward()`. */
export interface BackwardOptions {
  /** ∂L/∂root for a root that is not a one-element tensor (same shape as the root). */
  gradient?: Tensor;
  /** Keep what the nodes saved, so that the graph can be run backward again. Default false. */
  retainGraph?: boolean;
}

/** Extra state of a recorded op. */
export interface RecordOptions {
  /** Tensors the backward reads: modifying one in place before the backward is refused. */
  saved?: ReadonlyArray<Tensor | null>;
  /** Runs when the node frees its saved state (e.g. releases a RecurrentSaved). */
  onRelease?: () => void;
}

let sequence = 0;

/** One recorded operation. */
export class GradNode {
  /** Recording order: a node's inputs were all made by nodes recorded before it. */
  readonly seq = sequence++;
  /** Whether the saved state has been freed (by a backward without `retainGraph`). */
  released = false;
  /** @internal */ inputs: ReadonlyArray<Tensor | null>;
  /** @internal */ readonly needs: readonly boolean[];
  /** @internal */ readonly outputShapes: ReadonlyArray<readonly number[]>;
  /** @internal */ readonly outputDevices: readonly Device[];
  private fn: BackwardFn | null;
  private saved: Array<[Tensor, number]>;
  private onRelease: (() => void) | null;

  /** @internal */
  constructor(readonly name: string, inputs: ReadonlyArray<Tensor | null>, outputs: ReadonlyArray<Tensor | null>,
    fn: BackwardFn, options: RecordOptions) {
    this.inputs = inputs;
    this.needs = inputs.map((t) => t !== null && t.requiresGrad);
    this.outputShapes = outputs.map((t) => (t ? t.shape : []));
    this.outputDevices = outputs.map((t) => (t ? t.device : 'cpu'));
    this.fn = fn;
    this.saved = (options.saved ?? []).filter((t): t is Tensor => t !== null).map((t) => [t, t.version]);
    this.onRelease = options.onRelease ?? null;
  }

  /** @internal Refuses to run a freed node or one whose saved tensors changed. */
  check(): void {
    if (this.released) {
      throw new RnnkitError('ERR_RNNKIT_AUTOGRAD', `backward through ${this.name}, whose graph has already been freed ` +
        '(a second backward of the same graph needs { retainGraph: true } in the first)');
    }
    for (const [t, version] of this.saved) {
      t.assertLive(`a tensor saved by ${this.name} for its backward`);
      if (t.version !== version) {
        throw new RnnkitError('ERR_RNNKIT_AUTOGRAD', `a tensor [${t.shape.join(', ')}] saved by ${this.name} for its ` +
          `backward was modified in place since the forward (version ${version}, now ${t.version}), e.g. by an ` +
          'optimizer step: run the backward before changing it');
      }
    }
  }

  /** @internal */
  run(grads: ReadonlyArray<Tensor | null>, ctx: BackwardContext): MaybePromise<ReadonlyArray<InputGrad>> {
    return (this.fn as BackwardFn)(grads, ctx);
  }

  /** @internal Frees the saved state. */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.fn = null;
    this.saved = [];
    this.inputs = [];
    const cb = this.onRelease;
    this.onRelease = null;
    if (cb) cb();
  }
}

/** Whether an op on these inputs is recorded now. */
export function shouldRecord(inputs: ReadonlyArray<Tensor | null | undefined>): boolean {
  if (!isGradEnabled()) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/** Records an op when `shouldRecord(inputs)`; returns its node (null when nothing was recorded). */
export function record(name: string, inputs: ReadonlyArray<Tensor | null | undefined>, outputs: ReadonlyArray<Tensor | null>,
  fn: BackwardFn, options: RecordOptions = {}): GradNode | null {
  if (!shouldRecord(inputs)) return null;
  const node = new GradNode(name, inputs.map((t) => t ?? null), outputs, fn, options);
  outputs.forEach((t, k) => t?.setGradFn(node, k));
  return node;
}

/** Records `out` as a reshape / copy / move of `src`: the gradient goes back unchanged. */
export function recordIdentity(name: string, src: Tensor, out: Tensor): void {
  record(name, [src], [out], (grads) => {
    const g = grads[0] as Tensor;
    const moved = g.device === src.device ? g : g.to(src.device);
    return [moved.reshape(src.shape)];
  });
}

interface Slot {
  tensor: Tensor;
  /** Only the tape refers to it: it may be summed into in place. */
  owned: boolean;
}

/** The state of one backward: `queueCallback` finds it through AsyncLocalStorage. */
class BackwardRun {
  readonly callbacks: Array<() => unknown> = [];
  finished = false;
  private readonly slots = new Map<GradNode, Array<Slot | null>>();
  private readonly pending: Map<Tensor, number>;
  private readonly gotGrad = new Set<Tensor>();
  private readonly promises: Array<Promise<unknown>> = [];
  private failed = false;
  private firstError: unknown = null;

  constructor(private readonly root: Tensor, private readonly rootGrad: Slot, private readonly order: GradNode[],
    leafEdges: Map<Tensor, number>, private readonly retain: boolean, private readonly async: boolean) {
    this.pending = leafEdges;
  }

  /** The traversal as steps; each yielded value is a native call's result (or Promise). */
  *steps(): Generator<MaybePromise<unknown>, void, unknown> {
    const root = this.root;
    if (root.gradFn === null) {
      yield this.accumulateLeaf(root, this.rootGrad.tensor, !this.rootGrad.owned);
      this.leafDone(root, true);
      return;
    }
    this.slots.set(root.gradFn, this.slotList(root.gradFn, root.outputIndex, this.rootGrad));
    for (const node of this.order) {
      if (this.failed) return;
      yield* this.runNode(node);
    }
  }

  /**
   * After the traversal: runs the queued callbacks in order, each awaited, and waits for the
   * hooks' Promises; callbacks queued meanwhile (from a hook's continuation) run too. Then throws
   * the first error.
   */
  finish(): MaybePromise<void> {
    const done = (): void => {
      this.finished = true;
      if (this.failed) throw this.firstError;
    };
    if (!this.async) {
      while (!this.failed && this.callbacks.length > 0) {
        const result = this.callback();
        if (isThenable(result as MaybePromise<unknown>)) {
          this.fail(new RnnkitError('ERR_RNNKIT_ARG', 'backwardSync: a queued callback returned a Promise; use backward()'));
        }
      }
      if (this.promises.length > 0) {
        this.fail(new RnnkitError('ERR_RNNKIT_ARG', 'backwardSync: a post-accumulate hook returned a Promise; use backward()'));
      }
      return done();
    }
    const drain = async (): Promise<void> => {
      for (;;) {
        while (!this.failed && this.callbacks.length > 0) {
          const result = this.callback();
          if (isThenable(result as MaybePromise<unknown>)) await (result as Promise<unknown>).catch((err: unknown) => this.fail(err));
        }
        if (this.promises.length === 0) return;
        await Promise.all(this.promises.splice(0));
      }
    };
    return drain().then(done);
  }

  /** Runs the next queued callback; a throw fails the backward. */
  private callback(): unknown {
    const cb = this.callbacks.shift() as () => unknown;
    try {
      return cb();
    } catch (err) {
      this.fail(err);
      return undefined;
    }
  }

  fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.firstError = err;
  }

  private *runNode(node: GradNode): Generator<MaybePromise<unknown>, void, unknown> {
    const list = this.slots.get(node);
    this.slots.delete(node);
    const grads = node.outputShapes.map((_, k) => (list && list[k] ? list[k].tensor : null));
    const inputs = node.inputs;
    if (grads.every((g) => g === null)) {
      inputs.forEach((t, k) => {
        if (t && node.needs[k] && t.gradFn === null) this.leafDone(t, false);
      });
      if (!this.retain) node.release();
      return;
    }
    const ctx: BackwardContext = {
      needs: node.needs,
      async: this.async,
      retain: this.retain,
      accumulateInto: (k) => {
        const t = inputs[k];
        if (!t || !node.needs[k] || t.gradFn !== null || !t.grad) return null;
        return t.grad.size === t.size && t.grad.device === t.device ? t.grad : null;
      },
    };
    const results = (yield node.run(grads, ctx)) as ReadonlyArray<InputGrad>;
    if (!this.retain) node.release();
    for (let k = 0; k < inputs.length; k++) {
      const t = inputs[k];
      if (!t || !node.needs[k]) continue;
      const r = results[k];
      if (r === ACCUMULATED) {
        if (t.gradFn !== null || !t.grad) throw new RnnkitError('ERR_RNNKIT_INTERNAL', `${node.name} claims to have accumulated a gradient it did not`);
        this.leafDone(t, true);
      } else if (r === null || r === undefined) {
        if (t.gradFn === null) this.leafDone(t, false);
      } else {
        const shared = grads.some((g) => g !== null && g.sharesStorage(r)) ||
          results.some((o, j) => j !== k && o instanceof Tensor && o.sharesStorage(r));
        if (t.gradFn !== null) {
          yield this.addToSlot(t.gradFn, t.outputIndex, r, shared, node.name);
        } else {
          yield this.accumulateLeaf(t, r, shared);
          this.leafDone(t, true);
        }
      }
    }
  }

  private slotList(node: GradNode, index: number, slot: Slot): Array<Slot | null> {
    const list: Array<Slot | null> = node.outputShapes.map(() => null);
    list[index] = slot;
    return list;
  }

  private conform(g: Tensor, shape: readonly number[], device: Device, what: string): { g: Tensor; moved: boolean } {
    const size = shape.reduce((a, b) => a * b, 1);
    if (g.size !== size) {
      throw new RnnkitError('ERR_RNNKIT_INTERNAL', `${what}: a gradient of ${g.size} values for a tensor of [${shape.join(', ')}]`);
    }
    const moved = g.device !== device;
    let out = moved ? g.to(device) : g;
    if (out.shape.length !== shape.length || out.shape.some((d, i) => d !== shape[i])) out = out.reshape(shape);
    return { g: out, moved };
  }

  private addToSlot(node: GradNode, index: number, g0: Tensor, shared: boolean, from: string): MaybePromise<unknown> {
    const { g, moved } = this.conform(g0, node.outputShapes[index], node.outputDevices[index], `the backward of ${from}`);
    const list = this.slots.get(node);
    if (!list) {
      this.slots.set(node, this.slotList(node, index, { tensor: g, owned: moved || !shared }));
      return undefined;
    }
    const slot = list[index];
    if (!slot) {
      list[index] = { tensor: g, owned: moved || !shared };
      return undefined;
    }
    const k = kernelsFor(g.device);
    if (slot.owned) return k.accumulate(slot.tensor, g, this.async);
    const sum = k.broadcast('add', slot.tensor, g, 1, this.async);
    const keep = (t: Tensor): void => {
      list[index] = { tensor: t, owned: true };
    };
    return isThenable(sum) ? sum.then(keep) : keep(sum);
  }

  private accumulateLeaf(t: Tensor, g0: Tensor, shared: boolean): MaybePromise<unknown> {
    const { g, moved } = this.conform(g0, t.shape, t.device, 'accumulating into .grad');
    if (t.grad === null) {
      t.grad = shared && !moved ? g.clone() : g;
      return undefined;
    }
    if (t.grad.device !== t.device) {
      throw new RnnkitError('ERR_RNNKIT_DEVICE', `.grad is on ${t.grad.device}, its tensor on ${t.device}`);
    }
    return kernelsFor(t.device).accumulate(t.grad, g, this.async);
  }

  private leafDone(t: Tensor, got: boolean): void {
    const left = (this.pending.get(t) ?? 1) - 1;
    this.pending.set(t, left);
    if (got) this.gotGrad.add(t);
    if (left > 0 || !this.gotGrad.has(t) || !t.postAccumulateGradHooks) return;
    for (const hook of t.postAccumulateGradHooks.slice()) {
      let result: unknown;
      try {
        result = hook(t);
      } catch (err) {
        this.fail(err);
        return;
      }
      if (isThenable(result as MaybePromise<unknown>)) this.promises.push((result as Promise<unknown>).catch((err: unknown) => this.fail(err)));
    }
  }
}

const currentRun = new AsyncLocalStorage<BackwardRun>();

const BACKWARD_KEYS = ['gradient', 'retainGraph'] as const;

/** The implicit ∂L/∂root = 1 of each `backward()` without a gradient. */
const unitSeeds = new WeakSet<Tensor>();

/** Whether `g` is the implicit gradient 1 of a backward's root: a backward may use 1 without reading g. */
export function isUnitSeed(g: Tensor): boolean {
  return unitSeeds.has(g);
}

/** Checks the root and every node it depends on, and builds the run (nothing is changed yet). */
function plan(root: Tensor, options: BackwardOptions | undefined, async: boolean): BackwardRun {
  const o = readOptions(options, BACKWARD_KEYS, 'backward options');
  const retain = readBoolean(o.retainGraph, 'retainGraph', false);
  if (!(root instanceof Tensor)) throw new RnnkitError('ERR_RNNKIT_ARG', 'backward needs a Tensor');
  root.assertLive('the tensor to run backward from');
  if (!root.requiresGrad) {
    throw new RnnkitError('ERR_RNNKIT_ARG', 'backward of a tensor that does not require gradients (no input required ' +
      'gradients, it was computed under noGrad, or it was detached)');
  }
  let rootGrad: Slot;
  if (o.gradient !== undefined) {
    const g = o.gradient;
    if (!(g instanceof Tensor)) throw new RnnkitError('ERR_RNNKIT_ARG', 'gradient must be a Tensor');
    g.assertLive('gradient');
    if (g.rank !== root.rank || g.shape.some((d, k) => d !== root.shape[k]) || g.device !== root.device) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `gradient [${g.shape.join(', ')}] on ${g.device} does not match the root ` +
        `[${root.shape.join(', ')}] on ${root.device}`);
    }
    rootGrad = { tensor: g, owned: false };
  } else {
    if (root.size !== 1) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `backward() without a gradient needs a one-element tensor, got [${root.shape.join(', ')}]`);
    }
    // Made on the root's device (a CUDA fill, no host copy) and known to be 1 (isUnitSeed).
    const one = full(root.shape, 1, { device: root.device });
    unitSeeds.add(one);
    rootGrad = { tensor: one, owned: true };
  }
  const order: GradNode[] = [];
  const leafEdges = new Map<Tensor, number>();
  if (root.gradFn === null) {
    leafEdges.set(root, 1);
  } else {
    const seen = new Set<GradNode>([root.gradFn]);
    const stack = [root.gradFn];
    while (stack.length > 0) {
      const node = stack.pop() as GradNode;
      node.check();
      order.push(node);
      node.inputs.forEach((t, k) => {
        if (!t || !node.needs[k]) return;
        if (t.gradFn === null) leafEdges.set(t, (leafEdges.get(t) ?? 0) + 1);
        else if (!seen.has(t.gradFn)) {
          seen.add(t.gradFn);
          stack.push(t.gradFn);
        }
      });
    }
    order.sort((a, b) => b.seq - a.seq);
  }
  return new BackwardRun(root, rootGrad, order, leafEdges, retain, async);
}

/** @internal tensor.backward() */
export async function runBackward(root: Tensor, options?: BackwardOptions): Promise<void> {
  const run = plan(root, options, true);
  return currentRun.run(run, () => withGradMode(false, async () => {
    const steps = run.steps();
    try {
      let step = steps.next();
      while (!step.done) step = steps.next(await step.value);
    } catch (err) {
      run.fail(err);
    }
    await run.finish();
  }));
}

/** @internal tensor.backwardSync() */
export function runBackwardSync(root: Tensor, options?: BackwardOptions): void {
  const run = plan(root, options, false);
  currentRun.run(run, () => withGradMode(false, () => {
    const steps = run.steps();
    try {
      let step = steps.next();
      while (!step.done) {
        if (isThenable(step.value)) throw new RnnkitError('ERR_RNNKIT_INTERNAL', 'a synchronous backward step returned a Promise');
        step = steps.next(step.value);
      }
    } catch (err) {
      run.fail(err);
    }
    run.finish();
  }));
}

/**
 * Queues `fn` to run after the current backward's traversal (callable only from inside a
 * backward, e.g. from a post-accumulate hook). `fn` may return a Promise; `backward()` waits.
 */
export function queueCallback(fn: () => unknown): void {
  if (typeof fn !== 'function') throw new RnnkitError('ERR_RNNKIT_ARG', 'queueCallback needs a function');
  const run = currentRun.getStore();
  if (!run || run.finished) throw new RnnkitError('ERR_RNNKIT_ARG', 'queueCallback is callable only during a backward');
  run.callbacks.push(fn);
}
