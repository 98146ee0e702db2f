/**
 * Loads the native addon and is the only module that touches raw native handles.
 *
 * Order: RNNKIT_ADDON (an explicit binary of either flavor, e.g. the sanitizer build); then, unless
 * RNNKIT_DEVICE=cpu, the CUDA flavor (RNNKIT_CUDA_ADDON, then build-cuda/ from
 * `npm run build:cuda`, then prebuilds/<platform>-<arch>-cuda/); otherwise, or when it fails to
 * load, the CPU flavor through node-gyp-build (build/Release, then prebuilds/<platform>-<arch>/).
 * The CUDA folder name has three dash-separated parts, so node-gyp-build never picks it up.
 */
import * as fs from 'fs';
import * as path from 'path';
import { RnnkitError } from './errors';

/** A native device allocation (see native/napi/device_buffer.h). */
export interface DeviceBuffer {
  readonly bytes: number;
  readonly device: number;
  readonly disposed: boolean;
  dispose(): void;
}

export interface NativeCudaDevice {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
  freeMemory: number;
  multiprocessors: number;
}

export interface NativeBackendInfo {
  flavor: 'cpu' | 'cuda';
  isa: string;
  detectedIsa: string;
  availableIsas: string[];
  numThreads: number;
  napiVersion: number;
  cuda: {
    built: boolean;
    available: boolean;
    reason: string | null;
    driverVersion: number;
    runtimeVersion: number;
    architectures: string[];
    devices: NativeCudaDevice[];
  };
}

/** The raw binding. Each op file in native/napi adds its functions; they are typed here. */
export interface NativeBinding {
  init(errorClass: typeof RnnkitError): void;
  backendInfo(): NativeBackendInfo;
  setNumThreads(n: number): number;
  numThreads(): number;
  setIsa(name: string): string;
  DeviceBuffer: new (device: number, bytes: number) => DeviceBuffer;
  copyToDevice(dst: DeviceBuffer, src: Float32Array, async: boolean): Promise<void> | undefined;
  copyToHost(src: DeviceBuffer, dst: Float32Array, async: boolean): Promise<void> | undefined;
  copyDeviceToDevice(dst: DeviceBuffer, src: DeviceBuffer, async: boolean): Promise<void> | undefined;
  saxpy(a: number, x: DeviceBuffer, y: DeviceBuffer, async: boolean): Promise<void> | undefined;
  deviceMemory(device: number): { used: number; cached: number };
  releaseCache(device: number): void;
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, M: number, N: number, K: number,
    transA: boolean, transB: boolean, accumulate: boolean, async: boolean): Promise<void> | undefined;
  [name: string]: unknown;
}

export interface LoadAttempt {
  flavor: 'cpu' | 'cuda';
  path: string;
  error: string | null;
}

export interface LoadedAddon {
  binding: NativeBinding;
  flavor: 'cpu' | 'cuda';
  path: string;
  attempts: LoadAttempt[];
}

export const packageRoot = path.resolve(__dirname, '..');

function glibcVersion(): string {
  const report = (process as unknown as { report?: { getReport(): unknown } }).report;
  const header = report ? (report.getReport() as { header?: { glibcVersionRuntime?: string } }).header : undefined;
  return header && header.glibcVersionRuntime ? `glibc ${header.glibcVersionRuntime}` : 'musl or unknown libc';
}

function cudaCandidates(): string[] {
  const out: string[] = [];
  if (process.env.RNNKIT_CUDA_ADDON) out.push(path.resolve(process.env.RNNKIT_CUDA_ADDON));
  out.push(path.join(packageRoot, 'build-cuda', 'Release', 'rnnkit_cuda.node'));
  out.push(path.join(packageRoot, 'prebuilds', `${process.platform}-${process.arch}-cuda`, 'rnnkit.cuda.node'));
  return out;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message.split('\n')[0] : String(err);
}

function loadAddon(): LoadedAddon {
  const attempts: LoadAttempt[] = [];
  if (process.env.RNNKIT_ADDON) {
    const explicit = path.resolve(process.env.RNNKIT_ADDON);
    try {
      const binding = require(explicit) as NativeBinding;
      const flavor = binding.backendInfo().flavor;
      attempts.push({ flavor, path: explicit, error: null });
      return { binding, flavor, path: explicit, attempts };
    } catch (err) {
      throw new RnnkitError('ERR_RNNKIT_LOAD', `RNNKIT_ADDON=${process.env.RNNKIT_ADDON} could not be loaded: ${describe(err)}`);
    }
  }
  const wantCuda = (process.env.RNNKIT_DEVICE || '').toLowerCase() !== 'cpu';
  if (wantCuda) {
    // In a development checkout, a CUDA binary older than the local CPU build is stale: skip it.
    const localCpu = path.join(packageRoot, 'build', 'Release', 'rnnkit.node');
    const localCpuTime = fs.existsSync(localCpu) ? fs.statSync(localCpu).mtimeMs : 0;
    for (const candidate of cudaCandidates()) {
      if (!fs.existsSync(candidate)) continue;
      if (!process.env.RNNKIT_CUDA_ADDON && fs.statSync(candidate).mtimeMs < localCpuTime) {
        attempts.push({ flavor: 'cuda', path: candidate, error: 'skipped: older than build/Release/rnnkit.node' });
        continue;
      }
      try {
        const binding = require(candidate) as NativeBinding;
        attempts.push({ flavor: 'cuda', path: candidate, error: null });
        return { binding, flavor: 'cuda', path: candidate, attempts };
      } catch (err) {
        attempts.push({ flavor: 'cuda', path: candidate, error: describe(err) });
      }
    }
  }
  try {
    const nodeGypBuild = require('node-gyp-build') as { (dir: string): unknown; resolve(dir: string): string };
    const resolved = nodeGypBuild.resolve(packageRoot);
    try {
      const binding = require(resolved) as NativeBinding;
      attempts.push({ flavor: 'cpu', path: resolved, error: null });
      return { binding, flavor: 'cpu', path: resolved, attempts };
    } catch (err) {
      attempts.push({ flavor: 'cpu', path: resolved, error: describe(err) });
    }
  } catch (err) {
    attempts.push({ flavor: 'cpu', path: path.join(packageRoot, 'build/Release | prebuilds'), error: describe(err) });
  }
  const tried = attempts.map((a) => `  - ${a.flavor}: ${a.path}: ${a.error}`).join('\n');
  throw new RnnkitError(
    'ERR_RNNKIT_LOAD',
    `rnnkit could not load its native addon.\nTried:\n${tried || '  (no candidate found)'}\n` +
      `Platform: ${process.platform}-${process.arch}, ${glibcVersion()}, Node ${process.version}, ` +
      `Node-API ${process.versions.napi}.\n` +
      'Fix: reinstall so that the CPU flavor compiles (`npm rebuild rnnkit`; needs python3, make and a ' +
      'C++17 compiler), or use a platform with a prebuild (Linux x64 glibc).',
  );
}

let loaded: LoadedAddon | null = null;

/** The loaded addon (loaded on first use). */
export function addon(): LoadedAddon {
  if (!loaded) {
    loaded = loadAddon();
    loaded.binding.init(RnnkitError);
  }
  return loaded;
}

export function native(): NativeBinding {
  return addon().binding;
}
