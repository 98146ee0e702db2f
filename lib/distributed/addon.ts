/**
 * Loads the optional collectives addons on first use. Each engine has an addon of its own under
 * native/dist/ (rnnkit_gloo.node, rnnkit_mpi.node, rnnkit_nccl.node), so each links only its own
 * system library and none is a load-time dependency of the main addon: `require('rnnkit')` works
 * without any of them, and asking for a backend whose addon or library is missing throws
 * ERR_RNNKIT_DIST saying what to install. This is the only module that touches the raw native
 * process groups (the counterpart of lib/native.ts for these addons).
 */
import * as fs from 'fs';
import * as path from 'path';
import { RnnkitError } from '../errors';
import { packageRoot } from '../native';
import { readChoice } from '../args';

/** A collective engine rnnkit can run on. */
export type BackendName = 'gloo' | 'mpi' | 'nccl';
const BACKEND_NAMES: readonly BackendName[] = ['gloo', 'mpi', 'nccl'];

/** @internal What the native group is made from (see native/dist/engine.h GroupConfig). */
export interface NativeGroupConfig {
  rank: number;
  worldSize: number;
  localRank: number;
  timeoutMs: number;
  initKind: 'tcp' | 'file' | 'launcher';
  host: string;
  port: number;
  path: string;
  socketInterface: string;
}

/** @internal The native side of a process group; every call runs after the calls before it. */
export interface NativeGroup {
  connect(sync: boolean): Promise<NativeJoined> | NativeJoined;
  allReduce(data: Float32Array | DeviceSpan, op: number, tag: number, sync: boolean): Promise<void> | undefined;
  broadcast(data: Float32Array | DeviceSpan, src: number, tag: number, sync: boolean): Promise<void> | undefined;
  allGather(input: Float32Array | DeviceSpan, output: Float32Array | DeviceSpan, sync: boolean): Promise<void> | undefined;
  barrier(sync: boolean): Promise<void> | undefined;
  destroy(sync: boolean): Promise<void> | undefined;
}

/** @internal Device memory handed to a GPU engine: an address, a length in floats, and the owner kept alive. */
export interface DeviceSpan {
  address: bigint;
  length: number;
  owner: object;
}

/** @internal */
export interface NativeJoined {
  rank: number;
  worldSize: number;
  description: string;
}

interface DistAddon {
  init(errorClass: typeof RnnkitError): void;
  version(): string;
  ProcessGroup: new (config: NativeGroupConfig) => NativeGroup;
}

/** Whether a backend can be used in this process, and if not, why. */
export interface BackendStatus {
  /** The backend. */
  name: BackendName;
  /** Whether its addon loaded in this process (else `reason` says why). */
  available: boolean;
  /** The engine and its version (e.g. 'gloo 0.5.0') when available. */
  version: string | null;
  /** Why it is not available, with what to install; null when available. */
  reason: string | null;
}

const installHints: Record<BackendName, string> = {
  gloo: 'install Gloo (Debian/Ubuntu: `sudo apt-get install libgloo-dev`) and build the addon: ' +
    '`npm run build:dist` in the rnnkit package, or reinstall rnnkit',
  mpi: 'install MPICH (Debian/Ubuntu: `sudo apt-get install libmpich-dev mpich`) and build the addon: ' +
    '`npm run build:dist` in the rnnkit package, or reinstall rnnkit',
  nccl: 'NCCL is not packaged by Debian: install NVIDIA\'s libnccl2 (https://developer.nvidia.com/nccl) so that ' +
    'libnccl.so.2 is on the loader path (or in LD_LIBRARY_PATH), and build the addon with `npm run build:dist`',
};

/** The folder the addons are built into (RNNKIT_DIST_DIR overrides it). */
export function addonDirectory(): string {
  return process.env.RNNKIT_DIST_DIR ? path.resolve(process.env.RNNKIT_DIST_DIR)
    : path.join(packageRoot, 'native', 'dist', 'build', 'Release');
}

// What native/dist/build.js wrote about the last build: why an addon was skipped.
function buildNote(name: BackendName): string {
  try {
    const report = JSON.parse(fs.readFileSync(path.join(addonDirectory(), '..', 'backends.json'), 'utf8')) as
      Record<string, { built: boolean; reason?: string }>;
    const entry = report[name];
    return entry && !entry.built && entry.reason ? ` (last build: ${entry.reason})` : '';
  } catch {
    return '';
  }
}

const loaded = new Map<BackendName, DistAddon | RnnkitError>();

function load(name: BackendName): DistAddon | RnnkitError {
  const file = path.join(addonDirectory(), `rnnkit_${name}.node`);
  if (!fs.existsSync(file)) {
    return new RnnkitError('ERR_RNNKIT_DIST',
      `the ${name} backend is not built: ${file} is missing${buildNote(name)}. To use it, ${installHints[name]}.`);
  }
  // MPICH's UCX layer installs its own SIGSEGV/SIGBUS/SIGILL/SIGFPE handlers when it loads,
  // replacing the ones V8 relies on (WebAssembly bounds traps): keep them out unless asked for.
  if (name === 'mpi' && process.env.UCX_HANDLE_ERRORS === undefined) process.env.UCX_HANDLE_ERRORS = 'none';
  let addon: DistAddon;
  try {
    addon = require(file) as DistAddon;
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return new RnnkitError('ERR_RNNKIT_DIST', `the ${name} backend could not be loaded (${why}). To fix it, ${installHints[name]}.`);
  }
  addon.init(RnnkitError);
  try {
    addon.version();
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    return new RnnkitError('ERR_RNNKIT_DIST', `the ${name} backend is built but cannot run: ${why}. To fix it, ${installHints[name]}.`);
  }
  return addon;
}

function cached(name: BackendName): DistAddon | RnnkitError {
  let entry = loaded.get(name);
  if (!entry) {
    entry = load(name);
    loaded.set(name, entry);
  }
  return entry;
}

/** @internal The addon of `name`; throws ERR_RNNKIT_DIST naming what to install when it cannot load. */
export function backendAddon(name: BackendName): DistAddon {
  const entry = cached(name);
  if (entry instanceof RnnkitError) throw entry;
  return entry;
}

/** Whether `name` can be used here (loads its addon on first call). */
export function backendStatus(name: BackendName): BackendStatus {
  readChoice(name, 'backend', BACKEND_NAMES);
  const entry = cached(name);
  if (entry instanceof RnnkitError) return { name, available: false, version: null, reason: entry.message };
  return { name, available: true, version: entry.version(), reason: null };
}

/** The status of every backend: `rk.distributed.backends()`. */
export function backends(): BackendStatus[] {
  return BACKEND_NAMES.map(backendStatus);
}
