/**
 * initProcessGroup's options, filled in from the environment the launcher sets (RANK,
 * WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT: the names torchrun uses) or, for the mpi
 * backend, from mpiexec. Explicit options win over the environment; every value is checked
 * before anything connects.
 */
import { RnnkitError } from '../errors';
import { argError, readChoice, readInteger, readOptions } from '../args';
import { BackendName, NativeGroupConfig, backendStatus } from './addon';

/** Which engine a process group runs on; 'auto' picks mpi under mpiexec, gloo otherwise. */
export type BackendChoice = BackendName | 'auto';

/** Options of `rk.distributed.initProcessGroup`. */
export interface InitProcessGroupOptions {
  /** 'auto' (default), 'gloo', 'mpi' or 'nccl'. */
  backend?: BackendChoice;
  /** This process's rank in [0, worldSize); default RANK (0 when the world is one process). */
  rank?: number;
  /** Number of processes; default WORLD_SIZE, else 1. */
  worldSize?: number;
  /** Rank within this host (picks the GPU for nccl); default LOCAL_RANK, else 0. */
  localRank?: number;
  /**
   * 'tcp://host:port' (rank 0 hosts the rendezvous store there), 'file:///dir' (a directory every
   * rank sees) or 'env://' (tcp://MASTER_ADDR:MASTER_PORT, the default; 127.0.0.1:29500 when unset).
   */
  initMethod?: string;
  /** How long a collective or the rendezvous may wait on other ranks before ERR_RNNKIT_DIST; default 60000. */
  timeoutMs?: number;
}

const allowedKeys = ['backend', 'rank', 'worldSize', 'localRank', 'initMethod', 'timeoutMs'] as const;
const backendsAllowed: readonly BackendChoice[] = ['auto', 'gloo', 'mpi', 'nccl'];
const defaultTimeoutMs = 60000;
const maxTimeoutMs = 2 ** 31 - 1;
const defaultMasterPort = 29500;

/** @internal The resolved configuration of a process group. */
export interface ResolvedGroupOptions {
  backend: BackendName;
  native: NativeGroupConfig;
  /** Ranks the caller (or the environment) asked for, checked against what mpiexec says. */
  expectedRank: number | null;
  expectedWorldSize: number | null;
}

// An integer from an environment variable, or null when it is unset or empty.
function envInteger(name: string, min: number, max: number): number | null {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return null;
  if (!/^\s*\d+\s*$/.test(raw)) throw argError(`environment variable ${name} must be an integer (got '${raw}')`);
  return readInteger(Number(raw), `environment variable ${name}`, min, max);
}

/** True when this process was started by an MPI launcher (mpiexec / mpirun). */
export function launchedByMpi(): boolean {
  return process.env.PMI_RANK !== undefined || process.env.OMPI_COMM_WORLD_RANK !== undefined ||
    process.env.PMIX_RANK !== undefined;
}

function chooseBackend(choice: BackendChoice): BackendName {
  if (choice !== 'auto') return choice;
  if (launchedByMpi() && backendStatus('mpi').available) return 'mpi';
  const gloo = backendStatus('gloo');
  if (gloo.available) return 'gloo';
  throw new RnnkitError('ERR_RNNKIT_DIST', `backend 'auto' found no CPU backend: ${gloo.reason}`);
}

interface Rendezvous {
  initKind: 'tcp' | 'file';
  host: string;
  port: number;
  path: string;
}

function parseInitMethod(method: string | undefined, worldSize: number): Rendezvous {
  if (method === undefined || method === 'env://') {
    const host = process.env.MASTER_ADDR && process.env.MASTER_ADDR.trim() !== '' ? process.env.MASTER_ADDR.trim() : '127.0.0.1';
    const envPort = envInteger('MASTER_PORT', 1, 65535);
    // A world of one needs no agreed port: any free one will do.
    const port = envPort !== null ? envPort : worldSize === 1 ? 0 : defaultMasterPort;
    return { initKind: 'tcp', host, port, path: '' };
  }
  const tcp = /^tcp:\/\/(\[[0-9a-fA-F:.]+\]|[^:/[\]]+):(\d+)$/.exec(method);
  if (tcp) {
    const port = readInteger(Number(tcp[2]), `initMethod ${method}: the port`, 1, 65535);
    return { initKind: 'tcp', host: tcp[1].replace(/^\[|\]$/g, ''), port, path: '' };
  }
  const file = /^file:\/\/(\/.*)$/.exec(method);
  if (file) return { initKind: 'file', host: '', port: 0, path: decodeURIComponent(file[1]).replace(/\/+$/, '') || '/' };
  throw argError(`initMethod must be 'tcp://host:port', 'file:///path' or 'env://' (got '${method}')`);
}

/** @internal Checks the options and fills in the rest from the environment. */
export function resolveGroupOptions(options: unknown): ResolvedGroupOptions {
  const o = readOptions(options, allowedKeys, 'initProcessGroup options');
  const choice = readChoice(o.backend, 'backend', backendsAllowed, 'auto');
  if (o.initMethod !== undefined && typeof o.initMethod !== 'string') throw argError('initMethod must be a string');
  const timeoutMs = o.timeoutMs !== undefined ? readInteger(o.timeoutMs, 'timeoutMs', 1, maxTimeoutMs)
    : envInteger('RNNKIT_DIST_TIMEOUT_MS', 1, maxTimeoutMs) ?? defaultTimeoutMs;
  const maxRanks = 1 << 20;
  const worldOption = o.worldSize !== undefined ? readInteger(o.worldSize, 'worldSize', 1, maxRanks) : envInteger('WORLD_SIZE', 1, maxRanks);
  const rankOption = o.rank !== undefined ? readInteger(o.rank, 'rank', 0, maxRanks - 1) : envInteger('RANK', 0, maxRanks - 1);
  const localRank = o.localRank !== undefined ? readInteger(o.localRank, 'localRank', 0, maxRanks - 1)
    : envInteger('LOCAL_RANK', 0, maxRanks - 1) ?? 0;
  const backend = chooseBackend(choice);
  const socketInterface = process.env.GLOO_SOCKET_IFNAME ?? '';

  if (backend === 'mpi') {
    if (o.initMethod !== undefined) {
      throw argError(`the mpi backend takes its ranks from mpiexec: initMethod ('${o.initMethod as string}') does not apply`);
    }
    return {
      backend,
      native: { rank: 0, worldSize: 1, localRank, timeoutMs, initKind: 'launcher', host: '', port: 0, path: '', socketInterface },
      expectedRank: rankOption,
      expectedWorldSize: worldOption,
    };
  }
  const worldSize = worldOption ?? 1;
  if (rankOption === null && worldSize > 1) {
    throw argError(`rank is not given and RANK is not set (worldSize ${worldSize}): start the ranks with rnnkit-run or pass { rank }`);
  }
  const rank = rankOption ?? 0;
  if (rank >= worldSize) throw argError(`rank ${rank} is not below worldSize ${worldSize}`);
  const rdzv = parseInitMethod(o.initMethod as string | undefined, worldSize);
  return {
    backend,
    native: { rank, worldSize, localRank, timeoutMs, ...rdzv, socketInterface },
    expectedRank: rank,
    expectedWorldSize: worldSize,
  };
}
