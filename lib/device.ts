/**
 * Device strings, resolution of 'auto', and what the loaded backend can do.
 *
 * Examples: [A first program](../README.md#a-first-program), [Tensors and devices](../README.md#tensors-and-devices), [How loading and the CPU fallback work](../README.md#how-loading-and-the-cpu-fallback-work), [Threads and async](../README.md#threads-and-async).
 * @module
 */
import { RnnkitError } from './errors';
import { addon, native } from './native';
import { readInteger } from './args';
import { OpRunInfo, lastRuns } from './run-info';
import { HostCacheInfo, hostCacheInfo } from './host-cache';

/** Native objects the addon holds for JavaScript (native/napi/live_objects.h), process-wide. */
export interface LiveObjects {
  /** Device memory allocations (freed by dispose() or the GC of their tensor, and in-flight jobs). */
  deviceAllocations: number;
  /** Compiled step nets. */
  stepNets: number;
  /** Step-net forward workspaces a saved still holds. */
  stepWorkspaces: number;
  /** Async calls queued or running. */
  asyncJobs: number;
}

/** One native binary the loader tried (`backendInfo().loadAttempts`). */
export interface LoadAttempt {
  /** The flavor of the binary: the CPU build or the CUDA build. */
  flavor: 'cpu' | 'cuda';
  /** Where it was looked for. */
  path: string;
  /** Why it did not load (or was skipped); null for the one that loaded. */
  error: string | null;
}

/** One usable CUDA device (`backendInfo().cuda.devices`). */
export interface CudaDeviceInfo {
  /** N in `'cuda:N'`. */
  index: number;
  /** The device's name as the driver reports it. */
  name: string;
  /** The compute capability, `major.minor` (e.g. `9.0`). */
  computeCapability: string;
  /** Device memory in bytes. */
  totalMemory: number;
  /** Free device memory in bytes when `backendInfo()` was called. */
  freeMemory: number;
  /** Streaming multiprocessors. */
  multiprocessors: number;
}

/** A concrete device: the CPU or one CUDA device. */
export type Device = 'cpu' | `cuda:${number}`;
/** What callers may pass: `'auto'` picks CUDA device 0 when available, else the CPU. */
export type DeviceSpec = Device | 'cuda' | 'auto';

/** Host<->device copies this process has made: each direction's count and bytes. */
export interface CopyCounts {
  /** Host-to-device copies. */
  toDevice: number;
  /** Bytes copied host to device. */
  toDeviceBytes: number;
  /** Device-to-host copies. */
  toHost: number;
  /** Bytes copied device to host. */
  toHostBytes: number;
}

/** What `backendInfo()` reports: the loaded binary, its CPU kernel paths, threads and CUDA state. */
export interface BackendInfo {
  /** Which native flavor is loaded. */
  flavor: 'cpu' | 'cuda';
  /** The path of the loaded `.node` binary. */
  addonPath: string;
  /** Every binary the loader tried, in order, and why each one that failed did. */
  loadAttempts: LoadAttempt[];
  /** The ISA path the CPU kernels run: `portable`, `avx2`, `avx512` (x86-64) or `neon` (arm64). */
  isa: string;
  /** The best ISA path this CPU allows. */
  detectedIsa: string;
  /** Every ISA path this CPU can run, `portable` first and `detectedIsa` last (`RNNKIT_ISA` picks one). */
  availableIsas: string[];
  /** Threads of the native compute pool (`setNumThreads`, `RNNKIT_NUM_THREADS`). */
  numThreads: number;
  /** The Node-API version the binary was built for (9). */
  napiVersion: number;
  /** The device `'auto'` resolves to. */
  defaultDevice: Device;
  /** The CUDA side: whether it is built and usable, versions, compiled architectures and devices. */
  cuda: {
    /** True when the CUDA flavor is loaded. */
    built: boolean;
    /** True when a driver and at least one device are usable. */
    available: boolean;
    /** Why CUDA is unavailable (null when available). */
    reason: string | null;
    /** The CUDA driver's version (e.g. 12040 for 12.4), 0 without a driver. */
    driverVersion: number;
    /** The version of the CUDA runtime linked in, 0 in the CPU flavor. */
    runtimeVersion: number;
    /** The GPU architectures compiled into the binary, as CMake names them (e.g. `90-real`). */
    architectures: string[];
    /** Each usable device: index, name, compute capability, memory, multiprocessors. */
    devices: CudaDeviceInfo[];
    /**
     * The first CUDA error that left this process's CUDA context unusable (an illegal address, a
     * kernel fault); every later CUDA call fails with it. null while none happened.
     */
    stickyError: string | null;
    /** Host<->device copies this process has made (counts and bytes, each direction). */
    copies: CopyCounts;
  };
  /** Native objects the addon holds now, for leak checks: they return to their baseline once dropped objects are collected. */
  liveObjects: LiveObjects;
  /** The last call of every op that can run on CUDA: where it ran and why not on its inputs' device. */
  lastRuns: Record<string, OpRunInfo>;
  /** Host memory kept idle for reuse between calls (lib/host-cache.ts; `releaseCachedMemory()` frees it). */
  hostCache: HostCacheInfo;
}

let cudaAvailability: { available: boolean; count: number; reason: string | null } | null = null;

function cudaState(): { available: boolean; count: number; reason: string | null } {
  if (!cudaAvailability) {
    const info = native().backendInfo().cuda;
    cudaAvailability = { available: info.available, count: info.devices.length, reason: info.reason };
  }
  return cudaAvailability;
}

/** The loaded native flavor, its CPU kernel paths, compute threads and the CUDA state. */
export function backendInfo(): BackendInfo {
  const a = addon();
  const info = a.binding.backendInfo();
  return {
    flavor: info.flavor,
    addonPath: a.path,
    loadAttempts: a.attempts,
    isa: info.isa,
    detectedIsa: info.detectedIsa,
    availableIsas: info.availableIsas,
    numThreads: info.numThreads,
    napiVersion: info.napiVersion,
    defaultDevice: defaultDevice(),
    cuda: info.cuda,
    liveObjects: info.liveObjects,
    lastRuns: lastRuns(),
    hostCache: hostCacheInfo(info.hostCache),
  };
}

/** The device `'auto'` resolves to: CUDA device 0 when available (and RNNKIT_DEVICE is not `cpu`), else the CPU. */
export function defaultDevice(): Device {
  return resolveDevice('auto');
}

/** Turns a device spec into a concrete device, checking that it exists. @internal */
export function resolveDevice(spec: DeviceSpec | undefined): Device {
  const s = spec === undefined ? 'auto' : spec;
  if (typeof s !== 'string') throw new RnnkitError('ERR_RNNKIT_ARG', `device must be a string, got ${typeof s}`);
  if (s === 'cpu') return 'cpu';
  if (s === 'auto') {
    if ((process.env.RNNKIT_DEVICE || '').toLowerCase() === 'cpu') return 'cpu';
    return cudaState().available ? 'cuda:0' : 'cpu';
  }
  const m = /^cuda(?::(\d+))?$/.exec(s);
  if (!m) throw new RnnkitError('ERR_RNNKIT_ARG', `unknown device '${s}' (use 'cpu', 'cuda', 'cuda:N' or 'auto')`);
  const index = m[1] === undefined ? 0 : Number(m[1]);
  const state = cudaState();
  if (!state.available) {
    throw new RnnkitError('ERR_RNNKIT_DEVICE', `device '${s}' is not available: ${state.reason}`);
  }
  if (index >= state.count) {
    throw new RnnkitError('ERR_RNNKIT_DEVICE', `device '${s}' does not exist (${state.count} CUDA device(s))`);
  }
  return `cuda:${index}`;
}

/** The CUDA ordinal of a CUDA device. @internal */
export function deviceIndex(device: Device): number {
  return device === 'cpu' ? -1 : Number(device.slice(5));
}

/** Threads of the native compute pool (separate from libuv's). n < 1 restores the default. */
export function setNumThreads(n: number): number {
  return native().setNumThreads(Math.max(0, readInteger(n, 'setNumThreads(n): n', -(2 ** 31), 2 ** 31)));
}

/** The number of threads of the native compute pool. */
export function numThreads(): number {
  return native().numThreads();
}
