/**
 * rnnkit-run, the launcher (bin/rnnkit-run.js): starts `--nproc-per-node` ranks of a Node script
 * on this host with the environment initProcessGroup reads (RANK, WORLD_SIZE, LOCAL_RANK,
 * LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), prefixes every line a rank prints with its rank,
 * forwards SIGINT / SIGTERM / SIGHUP to the ranks, and when a rank fails stops the others
 * (SIGTERM, then SIGKILL after a grace period) and exits with the failed rank's status. Run it
 * once per host for a multi-host job (`--nnodes`, `--node-rank`, `--master-addr`).
 */
import { ChildProcess, spawn } from 'child_process';
import * as os from 'os';

/** The launcher's settings, parsed from its command line. */
export interface LaunchOptions {
  nprocPerNode: number;
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
  masterPort: number;
  /** How long the other ranks get to exit after SIGTERM before SIGKILL. */
  graceMs: number;
  script: string;
  scriptArgs: string[];
}

const usage = `usage: rnnkit-run [options] script.js [script arguments]

  --nproc-per-node N   ranks to start on this host (default 1)
  --nnodes N           hosts in the job (default 1)
  --node-rank R        this host's index in [0, nnodes) (default 0)
  --master-addr A      the host of rank 0, which runs the rendezvous store (default 127.0.0.1)
  --master-port P      its port (default 29500)
  --grace-ms MS        after a rank fails, how long the others get before SIGKILL (default 5000)
  -h, --help           this text

Each rank runs \`node script.js ...\` with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
MASTER_ADDR and MASTER_PORT set, and RNNKIT_NUM_THREADS = cores / nproc-per-node unless set.
`;

class UsageError extends Error {}

function integer(value: string | undefined, flag: string, min: number, max: number): number {
  if (value === undefined || !/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new UsageError(`${flag} needs an integer in [${min}, ${max}] (got ${value === undefined ? 'nothing' : `'${value}'`})`);
  }
  return Number(value);
}

/** Parses the launcher's arguments; those after the script belong to the script. */
export function parseLaunchArgs(argv: readonly string[]): LaunchOptions | 'help' {
  const o: LaunchOptions = {
    nprocPerNode: 1, nnodes: 1, nodeRank: 0, masterAddr: '127.0.0.1', masterPort: 29500, graceMs: 5000, script: '', scriptArgs: [],
  };
  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-')) break;
    if (arg === '-h' || arg === '--help') return 'help';
    const eq = arg.indexOf('=');
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const value = eq >= 0 ? arg.slice(eq + 1) : argv[++i];
    switch (flag) {
      case '--nproc-per-node': o.nprocPerNode = integer(value, flag, 1, 4096); break;
      case '--nnodes': o.nnodes = integer(value, flag, 1, 65536); break;
      case '--node-rank': o.nodeRank = integer(value, flag, 0, 65535); break;
      case '--master-addr':
        if (!value) throw new UsageError(`${flag} needs a host`);
        o.masterAddr = value;
        break;
      case '--master-port': o.masterPort = integer(value, flag, 1, 65535); break;
      case '--grace-ms': o.graceMs = integer(value, flag, 0, 3600000); break;
      default: throw new UsageError(`unknown option ${flag}`);
    }
  }
  if (i >= argv.length) throw new UsageError('no script given');
  if (o.nodeRank >= o.nnodes) throw new UsageError(`--node-rank ${o.nodeRank} must be below --nnodes ${o.nnodes}`);
  o.script = argv[i];
  o.scriptArgs = argv.slice(i + 1);
  return o;
}

// Writes `chunk` to `out` line by line, each line after `prefix`; keeps a partial last line.
function prefixer(prefix: string, out: NodeJS.WritableStream): { write(chunk: Buffer): void; end(): void } {
  let pending = '';
  return {
    write(chunk: Buffer) {
      const lines = (pending + chunk.toString('utf8')).split('\n');
      pending = lines.pop() as string;
      if (lines.length > 0) out.write(lines.map((l) => prefix + l + '\n').join(''));
    },
    end() {
      if (pending) out.write(prefix + pending + '\n');
      pending = '';
    },
  };
}

/** Exit status of a child as a shell reports it: the code, or 128 + the signal number. */
function status(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  const n = signal ? os.constants.signals[signal] : undefined;
  return 128 + (n ?? 1);
}

/** Starts the ranks of this host; resolves with the launcher's exit status. */
export function launch(o: LaunchOptions): Promise<number> {
  const worldSize = o.nnodes * o.nprocPerNode;
  const threads = Math.max(1, Math.floor(os.cpus().length / o.nprocPerNode));
  const ranks: { rank: number; child: ChildProcess; done: boolean }[] = [];
  let failure: { rank: number; status: number } | null = null;
  let killTimer: NodeJS.Timeout | null = null;

  const stopOthers = (): void => {
    for (const r of ranks) if (!r.done) r.child.kill('SIGTERM');
    if (!killTimer) {
      killTimer = setTimeout(() => {
        for (const r of ranks) if (!r.done) r.child.kill('SIGKILL');
      }, o.graceMs);
      killTimer.unref();
    }
  };

  return new Promise((resolve) => {
    const forward = (signal: NodeJS.Signals) => () => {
      process.stderr.write(`rnnkit-run: ${signal}: passing it to the ranks\n`);
      for (const r of ranks) if (!r.done) r.child.kill(signal);
    };
    const handlers: [NodeJS.Signals, () => void][] = (['SIGINT', 'SIGTERM', 'SIGHUP'] as NodeJS.Signals[]).map((s) => [s, forward(s)]);
    for (const [s, h] of handlers) process.on(s, h);

    let running = o.nprocPerNode;
    for (let local = 0; local < o.nprocPerNode; local++) {
      const rank = o.nodeRank * o.nprocPerNode + local;
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(worldSize),
        LOCAL_RANK: String(local),
        LOCAL_WORLD_SIZE: String(o.nprocPerNode),
        NODE_RANK: String(o.nodeRank),
        MASTER_ADDR: o.masterAddr,
        MASTER_PORT: String(o.masterPort),
      };
      if (env.RNNKIT_NUM_THREADS === undefined) env.RNNKIT_NUM_THREADS = String(threads);
      const child = spawn(process.execPath, [o.script, ...o.scriptArgs], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      const entry = { rank, child, done: false };
      ranks.push(entry);
      const out = prefixer(`[rank ${rank}] `, process.stdout);
      const err = prefixer(`[rank ${rank}] `, process.stderr);
      child.stdout?.on('data', (c: Buffer) => out.write(c));
      child.stderr?.on('data', (c: Buffer) => err.write(c));
      child.on('error', (e) => {
        process.stderr.write(`rnnkit-run: rank ${rank} could not start: ${e.message}\n`);
      });
      child.on('close', (code, signal) => {
        entry.done = true;
        out.end();
        err.end();
        const s = status(code, signal);
        if (s !== 0 && !failure) {
          failure = { rank, status: s };
          process.stderr.write(`rnnkit-run: rank ${rank} exited with ${code !== null ? `code ${code}` : `signal ${signal}`}; stopping the other ranks\n`);
          stopOthers();
        }
        if (--running === 0) {
          for (const [sig, h] of handlers) process.removeListener(sig, h);
          if (killTimer) clearTimeout(killTimer);
          resolve(failure ? failure.status : 0);
        }
      });
    }
  });
}

/** The command line entry: parses, launches, exits with the ranks' status (2 for a usage error). */
export function main(argv: readonly string[]): void {
  let options: LaunchOptions | 'help';
  try {
    options = parseLaunchArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`rnnkit-run: ${err.message}\n\n${usage}`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(usage);
    return;
  }
  launch(options).then((code) => process.exit(code));
}
