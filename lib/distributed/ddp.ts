/**
 * nn.DistributedDataParallel: a model replicated on every rank of a process group, whose
 * gradients are averaged across the ranks during `loss.backward()` (PyTorch's DDP).
 *
 * - At construction every parameter takes rank 0's values (broadcast, in buckets); `ready`
 *   resolves when that is done, and the first forward waits for it.
 * - The CPU parameters are grouped into buckets of about `bucketMB`, in reverse order of
 *   `parameters()` (the order a backward produces gradients in), each bucket one flat array. A
 *   post-accumulate-grad hook copies a parameter's finished `.grad` into its slice; when the last
 *   parameter of a bucket is in, the bucket's all-reduce (average) starts on the group's
 *   communication thread while the backward goes on: communication overlaps computation. When it
 *   is done the averages are copied back into the `.grad`s. (The `.grad` tensors stay the ones
 *   the modules made: nn.LSTM's are views of one packed gradient its kernel adds into.) A
 *   callback queued on the backward starts any bucket still waiting (a parameter that got no
 *   gradient this time counts with the gradient it has, or zero) and waits for every bucket, so
 *   `await loss.backward()` resolves with every `.grad` the average over the ranks, identical on
 *   every rank.
 * - Each bucket's all-reduce carries its index in the ranks' header check: ranks whose backwards
 *   produced buckets in different orders fail with ERR_RNNKIT_DIST instead of mixing buckets.
 * - CUDA parameters are all-reduced one by one as their gradients arrive (the group stages them
 *   through the host on gloo and mpi; nccl reduces device memory directly).
 *
 * `backwardSync()` cannot wait for the all-reduces: use `backward()`.
 */
import { RnnkitError } from '../errors';
import { isInstance, readNumber, readOptions } from '../args';
import { Tensor } from '../tensor';
import { queueCallback } from '../nn/engine';
import { Module } from '../nn/module';
import { ProcessGroup } from './process-group';

/** Options of `new nn.DistributedDataParallel(model, options)`. */
export interface DistributedDataParallelOptions {
  /** The group the gradients are averaged over (from `rk.distributed.initProcessGroup`). */
  processGroup: ProcessGroup;
  /** Target bucket size in megabytes (10^6 bytes); default 25, as PyTorch's. */
  bucketMB?: number;
}

const OPTION_KEYS = ['processGroup', 'bucketMB'] as const;
const AVG = 1; // ProcessGroup's op code of 'avg'
// Tags of the construction broadcasts and the gradient all-reduces, so that the two never pass
// for each other in the header check.
const BROADCAST_TAG = 1 << 20;

interface Bucket {
  index: number;
  params: Tensor[];
  /** One flat array, a slice per parameter. */
  flat: Float32Array;
  tensor: Tensor;
  slices: Map<Tensor, Float32Array>;
  /** Parameters whose gradient has not come in during this backward. */
  waiting: Set<Tensor>;
  inFlight: Promise<unknown> | null;
}

/** Groups CPU parameters into buckets of at most `capBytes` (a larger parameter gets one of its own). */
function makeBuckets(params: readonly Tensor[], capBytes: number): Bucket[] {
  const groups: Tensor[][] = [];
  let current: Tensor[] = [];
  let bytes = 0;
  for (const p of params) {
    if (current.length > 0 && bytes + p.size * 4 > capBytes) {
      groups.push(current);
      current = [];
      bytes = 0;
    }
    current.push(p);
    bytes += p.size * 4;
  }
  if (current.length > 0) groups.push(current);
  return groups.map((group, index) => {
    const flat = new Float32Array(group.reduce((n, p) => n + p.size, 0));
    const slices = new Map<Tensor, Float32Array>();
    let offset = 0;
    for (const p of group) {
      slices.set(p, flat.subarray(offset, offset + p.size));
      offset += p.size;
    }
    return { index, params: group, flat, tensor: Tensor.fromCpu(flat, [flat.length]), slices, waiting: new Set(group), inFlight: null };
  });
}

/** Keeps a Promise's rejection for whoever awaits it later, without an unhandled rejection meanwhile. */
function quiet<T>(p: Promise<T>): Promise<T> {
  p.catch(() => undefined);
  return p;
}

/** A module whose gradients are averaged across the ranks of a process group in `backward()`. */
export class DistributedDataParallel extends Module {
  /** The wrapped model (its parameters appear under `module.` in `namedParameters()`, as in PyTorch). */
  readonly module: Module;
  /** Resolves when every parameter holds rank 0's values (the first forward waits for it). */
  readonly ready: Promise<void>;
  private readonly group: ProcessGroup;
  private readonly buckets: Bucket[];
  private readonly bucketOf = new Map<Tensor, Bucket>();
  private readonly deviceParams: Tensor[];
  private readonly pendingDevice: Array<Promise<unknown>> = [];
  private readonly removeHooks: Array<() => void> = [];
  private armed = false;
  private synced = false;
  // Counts forwards: a bucket of an earlier step that finishes late (its backward failed) does
  // not write into the gradients of a later one.
  private step = 0;

  /**
   * Wraps `module` for data-parallel training over `options.processGroup`: registers a gradient
   * hook on each of its trainable parameters. Throws ERR_RNNKIT_ARG when `module` is not an
   * nn.Module, processGroup is missing, or bucketMB is out of (0, 4096]; ERR_RNNKIT_DISPOSED for a
   * disposed parameter.
   */
  constructor(module: Module, options: DistributedDataParallelOptions) {
    super();
    if (!isInstance(module, Module)) throw new RnnkitError('ERR_RNNKIT_ARG', 'DistributedDataParallel needs an nn.Module');
    const o = readOptions(options, OPTION_KEYS, 'DistributedDataParallel options');
    if (!isInstance(o.processGroup, ProcessGroup)) {
      throw new RnnkitError('ERR_RNNKIT_ARG', 'DistributedDataParallel needs { processGroup } from rk.distributed.initProcessGroup');
    }
    const bucketMB = readNumber(o.bucketMB, 'bucketMB', { above: 0, max: 4096 }, 25);
    this.module = module;
    this.group = o.processGroup;
    // Reverse definition order: the order a backward produces gradients in, roughly.
    const params = module.parameters().filter((p) => p.requiresGrad).reverse();
    for (const p of params) p.assertLive('a parameter of the DistributedDataParallel model');
    this.buckets = makeBuckets(params.filter((p) => p.device === 'cpu'), bucketMB * 1e6);
    for (const b of this.buckets) for (const p of b.params) this.bucketOf.set(p, b);
    this.deviceParams = params.filter((p) => p.device !== 'cpu');
    for (const p of params) this.removeHooks.push(p.registerPostAccumulateGradHook((t) => this.gradientIn(t)));
    this.ready = quiet(this.broadcastParameters().then(() => {
      this.synced = true;
    }));
  }

  /** The process group the gradients are averaged over. */
  get processGroup(): ProcessGroup {
    return this.group;
  }

  /** The wrapped model's forward, after the parameters are in step with rank 0. */
  override async forward(...args: unknown[]): Promise<unknown> {
    await this.ready;
    this.newStep();
    return this.module.forward(...args);
  }

  /** The wrapped model's forwardSync; `await ddp.ready` first. */
  override forwardSync(...args: unknown[]): unknown {
    if (!this.synced) {
      throw new RnnkitError('ERR_RNNKIT_ARG', 'the parameters are still being broadcast from rank 0: await ddp.ready before forwardSync');
    }
    this.newStep();
    return this.module.forwardSync(...args);
  }

  /** Stops averaging gradients: removes the hooks from the parameters (the model keeps training alone). */
  detachHooks(): void {
    for (const remove of this.removeHooks.splice(0)) remove();
  }

  // Rank 0's values to every rank, a bucket (or a CUDA parameter) at a time.
  private async broadcastParameters(): Promise<void> {
    for (const b of this.buckets) {
      for (const p of b.params) (b.slices.get(p) as Float32Array).set(p.data);
      await this.group.broadcastTagged(b.tensor, 0, BROADCAST_TAG + b.index);
      for (const p of b.params) {
        p.data.set(b.slices.get(p) as Float32Array);
        p.bumpVersion();
      }
    }
    for (const [k, p] of this.deviceParams.entries()) {
      await this.group.broadcastTagged(p, 0, BROADCAST_TAG + this.buckets.length + k);
      p.bumpVersion();
    }
  }

  private newStep(): void {
    this.step++;
    this.armed = false;
    for (const b of this.buckets) {
      b.waiting = new Set(b.params);
      b.inFlight = null;
    }
    this.pendingDevice.length = 0;
  }

  // A parameter's gradient is complete for this backward.
  private gradientIn(p: Tensor): void {
    if (!this.armed) {
      this.armed = true;
      queueCallback(() => this.finishBackward());
    }
    const bucket = this.bucketOf.get(p);
    if (!bucket) {
      if (p.grad) this.pendingDevice.push(quiet(this.group.allReduceTagged(p.grad, AVG, 1 + this.deviceParams.indexOf(p) + this.buckets.length)));
      return;
    }
    this.intoBucket(bucket, p);
    bucket.waiting.delete(p);
    if (bucket.waiting.size === 0 && !bucket.inFlight) this.startBucket(bucket);
  }

  // p's gradient into its slice of the bucket (zero when it has none).
  private intoBucket(bucket: Bucket, p: Tensor): void {
    const slice = bucket.slices.get(p) as Float32Array;
    if (p.grad) slice.set(p.grad.data);
    else slice.fill(0);
  }

  // The bucket's all-reduce, then the averages back into the .grads (a parameter without one gets one).
  private startBucket(bucket: Bucket): void {
    const step = this.step;
    bucket.inFlight = quiet(this.group.allReduceTagged(bucket.tensor, AVG, 1 + bucket.index).then(() => {
      if (step !== this.step) return;
      for (const p of bucket.params) {
        const slice = bucket.slices.get(p) as Float32Array;
        if (p.grad) p.grad.data.set(slice);
        else p.grad = Tensor.fromCpu(slice.slice(), p.shape);
      }
    }));
  }

  // After the backward's traversal: buckets with parameters that got no gradient go now, in
  // bucket order (the same on every rank), then everything is awaited.
  private async finishBackward(): Promise<void> {
    this.armed = false;
    for (const b of this.buckets) {
      if (b.inFlight) continue;
      for (const p of b.waiting) this.intoBucket(b, p);
      b.waiting.clear();
      this.startBucket(b);
    }
    const all = [...this.buckets.map((b) => b.inFlight), ...this.pendingDevice];
    this.pendingDevice.length = 0;
    await Promise.all(all);
  }
}
