/**
 * The typed native boundary: loads the addon, declares every function of the binding, and holds
 * the device-buffer helpers (allocate, upload, download, device-to-device copy). No other module
 * constructs a native object or casts the binding.
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
import type { BackendInfo, CopyCounts, CudaDeviceInfo, LiveObjects } from './device';
import type { BlobDescription } from './stepnet';
import type { HostCacheInfo } from './host-cache';

/** A native device allocation (see native/napi/device_buffer.h). */
export interface DeviceBuffer {
  readonly bytes: number;
  readonly device: number;
  readonly disposed: boolean;
  dispose(): void;
  /** The device pointer (0n once disposed): for the nccl collectives addon, which shares the process's CUDA context. */
  readonly address: bigint;
}

/** One CUDA device as the binding describes it: the public type, field for field. */
export type NativeCudaDevice = CudaDeviceInfo;

/** Host<->device copies made by the process (cuda/cuda_api.h copy_counts). */
export type NativeCopyCounts = CopyCounts;

/**
 * What `backendInfo()` of the binding returns (native/napi/system_ops.cc): the public
 * `BackendInfo` without what the JS loader adds (addon path, load attempts, default device, last runs).
 */
export type NativeBackendInfo = Omit<BackendInfo, 'addonPath' | 'loadAttempts' | 'defaultDevice' | 'lastRuns' | 'hostCache'> & {
  hostCache: Omit<HostCacheInfo, 'savedPoolBytes'>;
};

/** The recurrent configuration the binding reads (native/napi/recurrent_args.cc). */
export interface NativeRecurrentConfig {
  mode: 'lstm' | 'gru' | 'rnn_tanh' | 'rnn_relu';
  inputSize: number;
  hiddenSize: number;
  numLayers: number;
  bidirectional: boolean;
  skipInput: boolean;
  projSize: number;
  cellClip: number;
  peepholes: boolean;
  linearBeforeReset: boolean;
}

/** The CUDA recurrent algorithm a caller may ask for. */
export type NativeRecurrentAlgorithm = 'auto' | 'standard' | 'persistent';

/**
 * The named fields of one recurrent forward call (native/napi/recurrent_args.h), the same for the
 * CPU binding (A = Float32Array) and the CUDA one (A = DeviceBuffer). Every buffer holds exactly the
 * floats the config and T, B imply; `saved` null means inference; unknown fields are refused.
 */
interface NativeRecurrentCall<A> {
  config: NativeRecurrentConfig;
  T: number;
  B: number;
  batchFirst: boolean;
  x: A;
  hx: A | null;
  cx: A | null;
  seqLengths: Int32Array | null;
  weights: A;
  dropout: number;
  seed: number;
  y: A;
  async: boolean;
}

/** The forward call: the common fields and its outputs (`saved` null means inference). */
export interface NativeRecurrentForward<A> extends NativeRecurrentCall<A> {
  hy: A | null;
  cy: A | null;
  saved: A | null;
}

/** The named fields of one recurrent backward call: what the training forward took and produced. */
export interface NativeRecurrentBackward<A> extends NativeRecurrentCall<A> {
  saved: A;
  dy: A | null;
  dhy: A | null;
  dcy: A | null;
  dx: A;
  dhx: A | null;
  dcx: A | null;
  dweights: A;
  accumulate: boolean;
}

/**
 * The optimizer steps, one signature for both bindings (train_ops.cc with A = Float32Array,
 * cuda_train_ops.cc with A = DeviceBuffer): in place on the parameter and its state, `async` last.
 */
type SgdStep<A> = (p: A, g: A, buf: A | null, lr: number, momentum: number, dampening: number,
  weightDecay: number, nesterov: boolean, firstStep: boolean, async: boolean) => Done;
type AdamStep<A> = (p: A, g: A, m: A, v: A, vmax: A | null, lr: number, beta1: number, beta2: number, eps: number,
  weightDecay: number, step: number, decoupled: boolean, async: boolean) => Done;
type AdagradStep<A> = (p: A, g: A, sum: A, lr: number, lrDecay: number, weightDecay: number, eps: number, step: number,
  async: boolean) => Done;
type RmspropStep<A> = (p: A, g: A, squareAvg: A, gradAvg: A | null, buf: A | null, lr: number, alpha: number, eps: number,
  weightDecay: number, momentum: number, async: boolean) => Done;

/** A compiled step net (native/napi/stepnet_ops.cc); opaque. */
export interface NativeStepNet {
  readonly __stepNet: never;
}

/** The per-step blobs a step-net forward keeps natively; opaque. */
export interface NativeStepWorkspace {
  readonly __stepWorkspace: never;
}

/** A blob of a compiled step net: the binding returns the public BlobDescription as it is. */
export type NativeBlobDescription = BlobDescription;

/** Seconds per call of a timed native loop. */
export interface NativeTiming {
  median: number;
  min: number;
  max: number;
}

type Done = Promise<void> | undefined;
type F32 = Float32Array | null;
type Buf = DeviceBuffer | null;
/** `async: true` returns a Promise of the value, `async: false` the value itself. */
type Maybe<T> = T | Promise<T>;

/**
 * The raw binding, every function of every file in native/napi. Functions whose last argument is
 * `async` return a Promise when it is true and run on the calling thread when it is false.
 */
export interface NativeBinding {
  // system_ops.cc
  init(errorClass: typeof RnnkitError): void;
  backendInfo(): NativeBackendInfo;
  setNumThreads(n: number): number;
  numThreads(): number;
  setIsa(name: string): string;
  /** Frees the idle native working-memory blocks; the bytes freed. */
  releaseHostCache(): number;
  /** The idle bytes the native working-memory cache may keep. */
  setHostCacheLimit(bytes: number): void;
  /** Tests: NaN-fill every working-memory block handed out from now on. */
  setHostCachePoison(on: boolean): void;
  // live_objects.cc
  liveObjects(): LiveObjects;
  // device_buffer.cc
  DeviceBuffer: new (device: number, bytes: number) => DeviceBuffer;
  copyToDevice(dst: DeviceBuffer, src: Float32Array, async: boolean): Done;
  copyToHost(src: DeviceBuffer, dst: Float32Array, async: boolean): Done;
  copyDeviceToDevice(dst: DeviceBuffer, src: DeviceBuffer, async: boolean): Done;
  saxpy(a: number, x: DeviceBuffer, y: DeviceBuffer, async: boolean): Done;
  /** A DeviceBuffer over bytes [offsetBytes, offsetBytes + bytes) of `buffer`, keeping its memory alive. */
  deviceBufferSlice(buffer: DeviceBuffer, offsetBytes: number, bytes: number): DeviceBuffer;
  deviceMemory(device: number): { used: number; cached: number };
  releaseCache(device: number): void;
  // matmul_ops.cc, cuda_ops.cc
  matmul(a: Float32Array, b: Float32Array, out: Float32Array, M: number, N: number, K: number,
    transA: boolean, transB: boolean, accumulate: boolean, async: boolean): Done;
  cudaMatmul(a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, M: number, N: number, K: number,
    transA: boolean, transB: boolean, accumulate: boolean, tf32: boolean, async: boolean): Done;
  cudaRmsnormForward(x: DeviceBuffer, gamma: DeviceBuffer, beta: Buf, y: DeviceBuffer, rrms: DeviceBuffer,
    rows: number, cols: number, eps: number, async: boolean): Done;
  cudaRmsnormBackward(dy: DeviceBuffer, x: DeviceBuffer, gamma: DeviceBuffer, rrms: DeviceBuffer, dx: Buf,
    dgamma: Buf, dbeta: Buf, rows: number, cols: number, accumulate: boolean, async: boolean): Done;
  cudaStagingChunkBytes(): number;
  // check_ops.cc
  firstNonFinite(values: Float32Array): number;
  // rmsnorm_ops.cc
  rmsnormForward(x: Float32Array, gamma: Float32Array, beta: F32, y: Float32Array, rrms: Float32Array,
    rows: number, cols: number, eps: number, async: boolean): Done;
  rmsnormBackward(dy: Float32Array, x: Float32Array, gamma: Float32Array, rrms: Float32Array, dx: F32,
    dgamma: F32, dbeta: F32, rows: number, cols: number, accumulate: boolean, async: boolean): Done;
  // recurrent_ops.cc
  recurrentWeightsSize(cfg: NativeRecurrentConfig): number;
  recurrentSavedSize(cfg: NativeRecurrentConfig, T: number, B: number): number;
  recurrentInfo(): { isa: string; algorithm: string };
  recurrentForward(call: NativeRecurrentForward<Float32Array>): Done;
  recurrentBackward(call: NativeRecurrentBackward<Float32Array>): Done;
  // cuda_recurrent_ops.cc: the algorithm that ran (the CPU flavor throws ERR_RNNKIT_DEVICE)
  cudaRecurrentForward(call: NativeRecurrentForward<DeviceBuffer> & { algorithm: NativeRecurrentAlgorithm }): Maybe<string>;
  cudaRecurrentBackward(call: NativeRecurrentBackward<DeviceBuffer>): Maybe<string>;
  cudaRecurrentAlgorithm(cfg: NativeRecurrentConfig, T: number, B: number, device: number,
    algorithm: NativeRecurrentAlgorithm): string;
  cudaRecurrentAlgorithmReason(cfg: NativeRecurrentConfig, T: number, B: number, device: number,
    algorithm: NativeRecurrentAlgorithm): string;
  // stepnet_ops.cc
  stepnetCompile(spec: object): NativeStepNet;
  stepnetBlobs(net: NativeStepNet): NativeBlobDescription[];
  stepnetAliasSlots(net: NativeStepNet, T: number): number[];
  stepnetWorkspaceSize(net: NativeStepNet, T: number, B: number): { forward: number; backward: number };
  stepnetExecutor(net: NativeStepNet, executor: string): 'sequential' | 'wavefront';
  stepnetForward(net: NativeStepNet, T: number, B: number, inputs: Float32Array[], inputSteps: number[], inits: F32[],
    initRanks: number[], params: Float32Array[], seqLengths: Int32Array | null, aliasOut: Float32Array[],
    executor: string, async: boolean): Maybe<NativeStepWorkspace>;
  stepnetBackward(net: NativeStepNet, ws: NativeStepWorkspace, inputs: Float32Array[], params: Float32Array[],
    aliasGrads: F32[], dInputs: Float32Array[], dInits: F32[], dParams: Float32Array[], executor: string,
    async: boolean): Done;
  stepnetFetch(net: NativeStepNet, ws: NativeStepWorkspace, name: string, step: number, out: Float32Array): void;
  stepnetRelease(ws: NativeStepWorkspace): void;
  // train_ops.cc: the losses and sums return their value (a Promise of it when async)
  sgdStep: SgdStep<Float32Array>;
  adamStep: AdamStep<Float32Array>;
  adagradStep: AdagradStep<Float32Array>;
  rmspropStep: RmspropStep<Float32Array>;
  softmaxCrossEntropy(logits: Float32Array, targets: Int32Array, mask: F32, dlogits: F32, N: number, V: number,
    ignoreIndex: number, mean: boolean, async: boolean): Maybe<number>;
  mseLoss(y: Float32Array, target: Float32Array, dy: F32, mean: boolean, async: boolean): Maybe<number>;
  sumSquares(arrays: Float32Array[], async: boolean): Maybe<number>;
  scaleArrays(arrays: Float32Array[], scale: number, async: boolean): Done;
  clampArrays(arrays: Float32Array[], lo: number, hi: number, async: boolean): Done;
  // cuda_train_ops.cc: the twins of train_ops.cc on device buffers; a scalar result (loss, norm)
  // lands in `out` (one float on the device) and is returned as a number only when `read` is true
  cudaSgdStep: SgdStep<DeviceBuffer>;
  cudaAdamStep: AdamStep<DeviceBuffer>;
  cudaAdagradStep: AdagradStep<DeviceBuffer>;
  cudaRmspropStep: RmspropStep<DeviceBuffer>;
  cudaSoftmaxCrossEntropy(logits: DeviceBuffer, targets: Int32Array | DeviceBuffer, mask: Float32Array | DeviceBuffer | null,
    dlogits: Buf, out: Buf, N: number, V: number, ignoreIndex: number, mean: boolean, read: boolean,
    async: boolean): Maybe<number | undefined>;
  cudaMseLoss(y: DeviceBuffer, target: DeviceBuffer, dy: Buf, out: Buf, mean: boolean, read: boolean,
    async: boolean): Maybe<number | undefined>;
  cudaSumSquares(buffers: DeviceBuffer[], async: boolean): Maybe<number>;
  cudaClipGradNorm(buffers: DeviceBuffer[], maxNorm: number, out: Buf, read: boolean, async: boolean): Maybe<number | undefined>;
  cudaScaleBuffers(buffers: DeviceBuffer[], scale: number, async: boolean): Done;
  cudaClampBuffers(buffers: DeviceBuffer[], lo: number, hi: number, async: boolean): Done;
  cudaFill(buffer: DeviceBuffer, value: number, async: boolean): Done;
  // nn_ops.cc: the kernels of lib/nn (activation 0 tanh | 1 sigmoid | 2 relu; op 0 add | 1 mul)
  nnActivationForward(kind: number, x: Float32Array, y: Float32Array, async: boolean): Done;
  nnActivationBackward(kind: number, dy: Float32Array, y: Float32Array, dx: Float32Array, async: boolean): Done;
  nnBroadcastBinary(op: number, a: Float32Array, b: Float32Array, out: Float32Array, rows: number, m: number, async: boolean): Done;
  nnAffine(x: Float32Array, out: Float32Array, scale: number, shift: number, async: boolean): Done;
  nnAccumulate(y: Float32Array, x: Float32Array, async: boolean): Done;
  nnDropout(backward: boolean, input: Float32Array, output: Float32Array, p: number, seed: number, async: boolean): Done;
  nnSumAxis(x: Float32Array, w: F32, out: Float32Array, outer: number, len: number, inner: number, scale: number,
    accumulate: boolean, async: boolean): Done;
  nnBroadcastAxis(dy: Float32Array, dx: Float32Array, outer: number, len: number, inner: number, scale: number, async: boolean): Done;
  nnEmbeddingForward(weight: Float32Array, ids: Int32Array, out: Float32Array, V: number, D: number, async: boolean): Done;
  nnEmbeddingBackward(dy: Float32Array, ids: Int32Array, dweight: Float32Array, V: number, D: number, paddingIdx: number,
    accumulate: boolean, async: boolean): Done;
  nnCopyBlock(src: Float32Array, srcOffset: number, srcLd: number, dst: Float32Array, dstOffset: number, dstLd: number,
    rows: number, cols: number, async: boolean): Done;
  // cuda_nn_ops.cc: the same kernels on device buffers (host ids are uploaded by the call; device ids, int32, are not)
  cudaNnActivationForward(kind: number, x: DeviceBuffer, y: DeviceBuffer, async: boolean): Done;
  cudaNnActivationBackward(kind: number, dy: DeviceBuffer, y: DeviceBuffer, dx: DeviceBuffer, async: boolean): Done;
  cudaNnBroadcastBinary(op: number, a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, rows: number, m: number,
    async: boolean): Done;
  cudaNnAffine(x: DeviceBuffer, out: DeviceBuffer, scale: number, shift: number, async: boolean): Done;
  cudaNnAccumulate(y: DeviceBuffer, x: DeviceBuffer, async: boolean): Done;
  cudaNnDropout(backward: boolean, input: DeviceBuffer, output: DeviceBuffer, p: number, seed: number, async: boolean): Done;
  cudaNnSumAxis(x: DeviceBuffer, w: Buf, out: DeviceBuffer, outer: number, len: number, inner: number, scale: number,
    accumulate: boolean, async: boolean): Done;
  cudaNnBroadcastAxis(dy: DeviceBuffer, dx: DeviceBuffer, outer: number, len: number, inner: number, scale: number,
    async: boolean): Done;
  cudaNnEmbeddingForward(weight: DeviceBuffer, ids: Int32Array | DeviceBuffer, out: DeviceBuffer, V: number, D: number,
    async: boolean): Done;
  cudaNnEmbeddingBackward(dy: DeviceBuffer, ids: Int32Array | DeviceBuffer, dweight: DeviceBuffer, V: number, D: number,
    paddingIdx: number, accumulate: boolean, async: boolean): Done;
  cudaNnCopyBlock(src: DeviceBuffer, srcOffset: number, srcLd: number, dst: DeviceBuffer, dstOffset: number,
    dstLd: number, rows: number, cols: number, async: boolean): Done;
  // bench_ops.cc, gemm_bench_ops.cc: machine limits and timing loops for bench/
  fmaPeak(threads: number, isa?: string): number;
  copyBandwidth(bytes: number, threads: number, repeats: number): number;
  benchSgemm(M: number, N: number, K: number, transA: boolean, transB: boolean, packed: boolean, repeats: number,
    minMs: number): NativeTiming;
  peerInfo(name: string): { soname: string; detail: string } | null;
  benchPeerSgemm(name: string, M: number, N: number, K: number, transA: boolean, transB: boolean, threads: number,
    repeats: number, minMs: number): NativeTiming;
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
  const report: { getReport(): object } | undefined = process.report;
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

/** The typed binding (loaded on first use). */
export function native(): NativeBinding {
  return addon().binding;
}

/** A new, uninitialized device buffer of `floats` float32 values on CUDA device `device`. */
export function allocateDevice(device: number, floats: number): DeviceBuffer {
  return new (native().DeviceBuffer)(device, floats * 4);
}

/** `buf` after `fill(buf)`; disposed again when `fill` throws. */
function filled(buf: DeviceBuffer, fill: (b: DeviceBuffer) => void): DeviceBuffer {
  try {
    fill(buf);
  } catch (err) {
    buf.dispose();
    throw err;
  }
  return buf;
}

/** A new device buffer on `device` holding a copy of `host`, made on the calling thread. */
export function uploadNew(device: number, host: Float32Array): DeviceBuffer {
  return filled(allocateDevice(device, host.length), (b) => uploadSync(b, host));
}

/** Copies `src` into the device buffer `dst` on the calling thread. */
export function uploadSync(dst: DeviceBuffer, src: Float32Array): void {
  native().copyToDevice(dst, src, false);
}

/** Copies `src` into the device buffer `dst` off the event loop. */
export async function upload(dst: DeviceBuffer, src: Float32Array): Promise<void> {
  await native().copyToDevice(dst, src, true);
}

/** Copies the device buffer `src` into `dst` on the calling thread. */
export function downloadSync(src: DeviceBuffer, dst: Float32Array): void {
  native().copyToHost(src, dst, false);
}

/** Copies the device buffer `src` into `dst` off the event loop. */
export async function download(src: DeviceBuffer, dst: Float32Array): Promise<void> {
  await native().copyToHost(src, dst, true);
}

/** A device buffer over `floats` floats of `base` from float `offset` (no copy; it keeps `base`'s memory alive). */
export function sliceDevice(base: DeviceBuffer, offset: number, floats: number): DeviceBuffer {
  return native().deviceBufferSlice(base, offset * 4, floats * 4);
}

/** A new device buffer holding a copy of `src` (same device), made on the calling thread. */
export function copyDeviceNew(src: DeviceBuffer): DeviceBuffer {
  return filled(new (native().DeviceBuffer)(src.device, src.bytes), (b) => native().copyDeviceToDevice(b, src, false));
}
