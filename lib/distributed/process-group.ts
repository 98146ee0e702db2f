/**
 * ProcessGroup: the collectives of one group of processes. Each call is checked here (a live
 * tensor, known options), then queued on the group's communication thread in call order, so the
 * event loop never waits on other processes; every rank must make the same calls in the same
 * order (the native side checks that they agree before exchanging data). A CUDA tensor on a
 * CPU engine (gloo, mpi) is staged through host memory; the nccl engine works on device memory.
 */
import { RnnkitError } from '../errors';
import { allocFloats, argError, readChoice, readInteger, readOptions } from '../args';
import { Tensor, checkTensor, tensor, zeros } from '../tensor';
import { download, downloadSync, upload, uploadSync } from '../native';
import { BackendName, DeviceSpan, NativeGroup, backendAddon } from './addon';
import { InitProcessGroupOptions, ResolvedGroupOptions, resolveGroupOptions } from './options';

/** The reductions of allReduce. 'avg' is the sum divided by worldSize. */
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

/** Options of `allReduce`. */
export interface AllReduceOptions {
  /** Default 'sum'. */
  op?: ReduceOp;
}

/** Options of `broadcast`. */
export interface BroadcastOptions {
  /** The rank whose values every rank receives; default 0. */
  src?: number;
}

const reduceOps: readonly ReduceOp[] = ['sum', 'avg', 'max', 'min'];

function reduceOpCode(options: unknown): number {
  const o = readOptions(options, ['op'], 'allReduce options');
  return reduceOps.indexOf(readChoice(o.op, 'allReduce op', reduceOps, 'sum'));
}

/** Only initProcessGroup makes a group. */
const JOINED = Symbol('ProcessGroup');

/** A group of processes that run collectives together. Made by `initProcessGroup`. */
export class ProcessGroup {
  /** This process's rank in [0, worldSize). */
  readonly rank: number;
  /** Number of processes in the group. */
  readonly worldSize: number;
  /** Rank within this host (LOCAL_RANK). */
  readonly localRank: number;
  /** The engine underneath. */
  readonly backend: BackendName;
  /** The engine, its version and its transport, e.g. 'gloo 0.5.0, tcp on 10.0.0.3'. */
  readonly description: string;
  /** How long a collective waits on other ranks before it fails with ERR_RNNKIT_DIST. */
  readonly timeoutMs: number;
  private readonly group: NativeGroup;
  private destroyed = false;

  /** @internal Use `initProcessGroup`. */
  constructor(token: symbol, group: NativeGroup, backend: BackendName, joined: { rank: number; worldSize: number; description: string },
    localRank: number, timeoutMs: number) {
    if (token !== JOINED) throw argError('a ProcessGroup comes from rk.distributed.initProcessGroup()');
    this.group = group;
    this.backend = backend;
    this.rank = joined.rank;
    this.worldSize = joined.worldSize;
    this.description = joined.description;
    this.localRank = localRank;
    this.timeoutMs = timeoutMs;
  }

  /** In place: every rank's `t` becomes the reduction of all ranks' `t` (same shape on every rank). */
  async allReduce(t: Tensor, options?: AllReduceOptions): Promise<Tensor> {
    return this.allReduceTagged(t, reduceOpCode(options), 0);
  }

  /**
   * @internal allReduce with a tag (0..2^31-1) that joins the ranks' header check:
   * DistributedDataParallel tags each bucket, so ranks that reduce buckets in different orders
   * fail instead of mixing two buckets of the same size.
   */
  async allReduceTagged(t: Tensor, op: number, tag: number): Promise<Tensor> {
    await this.inPlace('allReduce', t, (span, sync) => this.group.allReduce(span, op, tag, sync));
    return t;
  }

  /** `allReduce`, blocking the event loop until every rank has taken part. */
  allReduceSync(t: Tensor, options?: AllReduceOptions): Tensor {
    const op = reduceOpCode(options);
    this.inPlaceSync('allReduce', t, (span, sync) => this.group.allReduce(span, op, 0, sync));
    return t;
  }

  /** In place: every rank's `t` becomes rank `src`'s. */
  async broadcast(t: Tensor, options?: BroadcastOptions): Promise<Tensor> {
    return this.broadcastTagged(t, this.srcRank(options), 0);
  }

  /** @internal broadcast with a tag in the header check (see allReduceTagged). */
  async broadcastTagged(t: Tensor, src: number, tag: number): Promise<Tensor> {
    await this.inPlace('broadcast', t, (span, sync) => this.group.broadcast(span, src, tag, sync));
    return t;
  }

  /** `broadcast`, blocking the event loop. */
  broadcastSync(t: Tensor, options?: BroadcastOptions): Tensor {
    const src = this.srcRank(options);
    this.inPlaceSync('broadcast', t, (span, sync) => this.group.broadcast(span, src, 0, sync));
    return t;
  }

  /** Every rank's `t`, stacked in rank order: a new tensor of shape [worldSize, ...t.shape] on t's device. */
  async allGather(t: Tensor): Promise<Tensor> {
    this.checked('allGather', t);
    const shape = [this.worldSize, ...t.shape];
    if (this.backend === 'nccl') {
      const out = zeros(shape, { device: t.device });
      await this.group.allGather(deviceSpan(t), deviceSpan(out), false);
      return out;
    }
    const output = allocFloats(this.worldSize * t.size, 'the gathered tensors', 'allGather');
    await this.group.allGather(t.device === 'cpu' ? t.data : await t.read(), output, false);
    return tensor(output, shape, { device: t.device });
  }

  /** `allGather`, blocking the event loop. */
  allGatherSync(t: Tensor): Tensor {
    this.checked('allGather', t);
    const shape = [this.worldSize, ...t.shape];
    if (this.backend === 'nccl') {
      const out = zeros(shape, { device: t.device });
      this.group.allGather(deviceSpan(t), deviceSpan(out), true);
      return out;
    }
    const output = allocFloats(this.worldSize * t.size, 'the gathered tensors', 'allGather');
    this.group.allGather(t.device === 'cpu' ? t.data : t.readSync(), output, true);
    return tensor(output, shape, { device: t.device });
  }

  /** Resolves when every rank has reached its barrier. */
  async barrier(): Promise<void> {
    this.assertUsable('barrier');
    await this.group.barrier(false);
  }

  /** `barrier`, blocking the event loop. */
  barrierSync(): void {
    this.assertUsable('barrier');
    this.group.barrier(true);
  }

  /**
   * Leaves the group after the calls already made: a last barrier when the group is healthy, then
   * the connections close. Later calls fail with ERR_RNNKIT_DIST. Idempotent.
   */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await this.group.destroy(false);
  }

  /** `destroy`, blocking the event loop. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.group.destroy(true);
  }

  /** A description for logs: rank, world size, the group's description and whether it is destroyed. */
  toString(): string {
    return `ProcessGroup(rank ${this.rank} of ${this.worldSize}, ${this.description}${this.destroyed ? ', destroyed' : ''})`;
  }

  private assertUsable(what: string): void {
    if (this.destroyed) throw new RnnkitError('ERR_RNNKIT_DIST', `${what}: the process group has been destroyed`);
  }

  private srcRank(options: unknown): number {
    const o = readOptions(options, ['src'], 'broadcast options');
    return readInteger(o.src, 'broadcast src', 0, this.worldSize - 1, 0);
  }

  private checked(what: string, t: Tensor): Tensor {
    this.assertUsable(what);
    checkTensor(t, `${what} tensor`);
    if (this.backend === 'nccl' && t.device !== `cuda:${this.localRank}`) {
      throw new RnnkitError('ERR_RNNKIT_DEVICE', `${what}: this rank's nccl group works on CUDA tensors on cuda:${this.localRank} ` +
        `(LOCAL_RANK), not ${t.device}; use backend 'gloo' for CPU tensors`);
    }
    return t;
  }

  // Runs an in-place collective on t's memory: the CPU array itself, device memory for nccl, or a
  // host copy written back for a CUDA tensor on a CPU engine.
  private async inPlace(what: string, t: Tensor, run: (span: Float32Array | DeviceSpan, sync: boolean) => unknown): Promise<void> {
    this.checked(what, t);
    if (t.device === 'cpu') {
      await run(t.data, false);
    } else if (this.backend === 'nccl') {
      await run(deviceSpan(t), false);
    } else {
      const host = new Float32Array(t.size);
      await download(t.deviceBuffer, host);
      await run(host, false);
      await upload(t.deviceBuffer, host);
    }
  }

  private inPlaceSync(what: string, t: Tensor, run: (span: Float32Array | DeviceSpan, sync: boolean) => unknown): void {
    this.checked(what, t);
    if (t.device === 'cpu') {
      run(t.data, true);
    } else if (this.backend === 'nccl') {
      run(deviceSpan(t), true);
    } else {
      const host = new Float32Array(t.size);
      downloadSync(t.deviceBuffer, host);
      run(host, true);
      uploadSync(t.deviceBuffer, host);
    }
  }
}

function deviceSpan(t: Tensor): DeviceSpan {
  const buffer = t.deviceBuffer;
  return { address: buffer.address, length: t.size, owner: buffer };
}

/**
 * Joins the group of processes this one belongs to and resolves when every rank has joined (or
 * rejects with ERR_RNNKIT_DIST naming the ranks missing after `timeoutMs`).
 */
export async function initProcessGroup(options?: InitProcessGroupOptions): Promise<ProcessGroup> {
  const resolved = resolveGroupOptions(options);
  const group = new (backendAddon(resolved.backend).ProcessGroup)(resolved.native);
  const joined = await group.connect(false);
  return checkJoined(group, resolved, joined);
}

/** `initProcessGroup`, blocking the event loop until the rendezvous is done. */
export function initProcessGroupSync(options?: InitProcessGroupOptions): ProcessGroup {
  const resolved = resolveGroupOptions(options);
  const group = new (backendAddon(resolved.backend).ProcessGroup)(resolved.native);
  const joined = group.connect(true) as { rank: number; worldSize: number; description: string };
  return checkJoined(group, resolved, joined);
}

function checkJoined(group: NativeGroup, r: ResolvedGroupOptions, joined: { rank: number; worldSize: number; description: string }): ProcessGroup {
  const wrong = (r.expectedRank !== null && r.expectedRank !== joined.rank) ||
    (r.expectedWorldSize !== null && r.expectedWorldSize !== joined.worldSize);
  if (wrong) {
    group.destroy(true);
    throw new RnnkitError('ERR_RNNKIT_DIST',
      `the ${r.backend} launcher made this process rank ${joined.rank} of ${joined.worldSize}, but rank ` +
      `${r.expectedRank ?? '(any)'} of ${r.expectedWorldSize ?? '(any)'} was asked for (options or RANK/WORLD_SIZE)`);
  }
  return new ProcessGroup(JOINED, group, r.backend, joined, r.native.localRank, r.native.timeoutMs);
}
