/**
 * Host memory kept for reuse between calls, so that a training loop's steady state allocates no
 * fresh pages: the native working-memory cache (gate buffers, gradient buffers and packed weights
 * of the CPU kernels; native/kernels/host_cache.h) and the saved-activation arrays of released CPU
 * training forwards, which the next training forward of a close size takes over.
 *
 * Fresh memory costs a page fault per 4 KiB page on first touch; for a recurrent call of tens of
 * megabytes that was a third of its time on a 2-core VM. Each of the two keeps at most
 * `RNNKIT_HOST_CACHE_MB` (default 1024, read at start; 0 keeps nothing) of idle memory, the oldest
 * dropped first; {@link releaseCachedMemory} frees it all (and the CUDA allocator's idle blocks).
 * Contents of reused memory are never visible: the kernels write every element they later read.
 *
 * Examples: [Threads and async](../README.md#threads-and-async).
 * @module
 */
import { native } from './native';

/** What `backendInfo().hostCache` reports. */
export interface HostCacheInfo {
  /** Idle native working-memory blocks held now, bytes. */
  cachedBytes: number;
  /** The most idle bytes each of the native cache and the saved-activation pool keeps (`RNNKIT_HOST_CACHE_MB`). */
  limitBytes: number;
  /** Native working memory in use by running calls, bytes. */
  inUseBytes: number;
  /** Native requests served from an idle block. */
  hits: number;
  /** Native requests that allocated. */
  misses: number;
  /** Idle saved-activation arrays (of released CPU training forwards) held for the next forward, bytes. */
  savedPoolBytes: number;
}

/**
 * Saved-activation arrays of released CPU training forwards. `take(n)` hands out an array of
 * exactly n floats carved from the smallest idle one that holds n and wastes under a quarter;
 * `give` returns one (its whole buffer). @internal
 */
class SavedPool {
  private idle: Float32Array[] = [];
  private bytes = 0;
  private limit: number | null = null;
  /** Tests: every array handed out is NaN-filled first, so a kernel reading what it did not write shows. */
  poison = false;

  get idleBytes(): number {
    return this.bytes;
  }

  take(n: number): Float32Array | null {
    const a = this.takeIdle(n);
    if (a && this.poison) a.fill(NaN);
    return a;
  }

  private takeIdle(n: number): Float32Array | null {
    let best = -1;
    for (let i = 0; i < this.idle.length; i++) {
      const len = this.idle[i].length;
      if (len >= n && len - n <= len / 4 && (best < 0 || len < this.idle[best].length)) best = i;
    }
    if (best < 0) return null;
    const [a] = this.idle.splice(best, 1);
    this.bytes -= a.byteLength;
    return a.length === n ? a : a.subarray(0, n);
  }

  give(a: Float32Array): void {
    const whole = new Float32Array(a.buffer, 0, a.buffer.byteLength / 4);
    const limit = this.limit ??= native().backendInfo().hostCache.limitBytes;
    if (whole.byteLength > limit) return;
    this.idle.push(whole);
    this.bytes += whole.byteLength;
    while (this.bytes > limit) this.bytes -= (this.idle.shift() as Float32Array).byteLength;
  }

  /** Forgets the limit read from the native side (setHostCacheLimit changed it). */
  resetLimit(): void {
    this.limit = null;
  }

  clear(): number {
    const b = this.bytes;
    this.idle = [];
    this.bytes = 0;
    return b;
  }
}

/** @internal The one pool (recurrent-cpu.ts takes from it, RecurrentSaved.release gives to it). */
export const savedPool = new SavedPool();

/**
 * Sets the idle limit of both the native cache and the saved pool (bytes; the environment's
 * `RNNKIT_HOST_CACHE_MB` at start, 0 in sanitizer builds). For tests. @internal
 */
export function setHostCacheLimit(bytes: number): void {
  native().setHostCacheLimit(bytes);
  savedPool.resetLimit();
}

/** The host cache figures for backendInfo(). @internal */
export function hostCacheInfo(nativeInfo: Omit<HostCacheInfo, 'savedPoolBytes'>): HostCacheInfo {
  return { ...nativeInfo, savedPoolBytes: savedPool.idleBytes };
}

/**
 * Frees the memory rnnkit keeps idle for reuse: the native host working-memory cache, the pool of
 * saved-activation arrays and, in the CUDA flavor, every device's idle allocator blocks. Memory in
 * use is not touched. Returns the host bytes freed (the garbage collector reclaims the pool's
 * arrays once nothing else refers to them).
 */
export function releaseCachedMemory(): number {
  const b = native();
  const freed = b.releaseHostCache() + savedPool.clear();
  const cuda = b.backendInfo().cuda;
  for (const d of cuda.devices) b.releaseCache(d.index);
  return freed;
}
