'use strict';
// rnnkit-run (bin/rnnkit-run.js): starts the ranks with the environment, prefixes their output,
// forwards signals, and when a rank dies stops the others and exits non-zero; with the others
// ignoring SIGTERM, their pending collectives fail with ERR_RNNKIT_DIST within the timeout.
const { spawn } = require('child_process');
const path = require('path');
const { freePort, skipWithout } = require('./dist/ranks');
const { parseLaunchArgs } = require('../dist/distributed/launcher');

const launcher = path.join(__dirname, '..', 'bin', 'rnnkit-run.js');
const rankScript = path.join(__dirname, 'dist', 'rank.js');

// Runs the launcher; `onLine(line, launcherChild)` sees each line it prints. Resolves { code, signal, out }.
function runLauncher(args, { onLine = null, env = {}, timeoutMs = 60000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [launcher, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let partial = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const take = (c) => {
      out += c;
      const lines = (partial + c).split('\n');
      partial = lines.pop();
      if (onLine) for (const l of lines) onLine(l, child);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, out });
    });
  });
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('rnnkit-run', function () {
  it('parses its options and leaves the script its own arguments', function () {
    const o = parseLaunchArgs(['--nproc-per-node=2', '--nnodes', '2', '--node-rank', '1', '--master-addr', '10.0.0.1', 'train.js', '--steps', '100', '--nproc-per-node', '9']);
    expect(o).to.include({ nprocPerNode: 2, nnodes: 2, nodeRank: 1, masterAddr: '10.0.0.1', masterPort: 29500, script: 'train.js' });
    expect(o.scriptArgs).to.deep.equal(['--steps', '100', '--nproc-per-node', '9']);
    expect(parseLaunchArgs(['--help'])).to.equal('help');
    expect(parseLaunchArgs(['--', '-odd.js']).script).to.equal('-odd.js');
    for (const bad of [[], ['--nproc-per-node', '0', 'x.js'], ['--nproc-per-node', 'two', 'x.js'], ['--bogus', 'x.js'], ['--node-rank', '2', '--nnodes', '2', 'x.js']]) {
      expect(() => parseLaunchArgs(bad), bad.join(' ')).to.throw();
    }
  });

  it('a usage error exits 2 with the usage text', async function () {
    const r = await runLauncher(['--nproc-per-node', 'lots', 'x.js']);
    expect(r.code).to.equal(2);
    expect(r.out).to.match(/--nproc-per-node needs an integer/).and.match(/usage: rnnkit-run/);
  });

  describe('with ranks (gloo)', function () {
    before(function () {
      skipWithout(this, 'gloo');
    });

    it('runs the ranks with RANK, WORLD_SIZE, LOCAL_RANK, MASTER_* and a thread share, prefixing every line', async function () {
      const port = await freePort();
      const r = await runLauncher(['--nproc-per-node', '2', '--master-port', String(port), rankScript, 'loop', '--steps', '3']);
      expect(r.code, r.out).to.equal(0);
      for (const rank of [0, 1]) {
        for (let step = 0; step < 3; step++) expect(r.out).to.match(new RegExp(`^\\[rank ${rank}\\] step ${step} pid \\d+$`, 'm'));
        const result = JSON.parse(new RegExp(`^\\[rank ${rank}\\] (\\{.*\\})$`, 'm').exec(r.out)[1]);
        expect(result.env).to.include({ RANK: String(rank), WORLD_SIZE: '2', LOCAL_RANK: String(rank), LOCAL_WORLD_SIZE: '2' });
        expect(Number(result.env.threads)).to.be.at.least(1);
        expect(result.args).to.deep.equal(['--steps', '3']);
      }
    });

    it('a killed rank: the others fail with ERR_RNNKIT_DIST within the timeout and the launcher exits non-zero', async function () {
      const port = await freePort();
      const pids = new Map();
      let killed = false;
      let killedAt = 0;
      const r = await runLauncher(['--nproc-per-node', '3', '--master-port', String(port), '--grace-ms', '8000', rankScript, 'loop', '--steps', '1000000', '--ignore-sigterm'], {
        env: { TEST_TIMEOUT_MS: '3000' },
        onLine: (line) => {
          const m = /^\[rank (\d)\] step (\d+) pid (\d+)$/.exec(line);
          if (!m) return;
          pids.set(Number(m[1]), Number(m[3]));
          if (!killed && Number(m[2]) >= 5 && pids.size === 3) {
            killed = true;
            killedAt = Date.now();
            process.kill(pids.get(1), 'SIGKILL');
          }
        },
      });
      expect(killed, r.out).to.equal(true);
      expect(Date.now() - killedAt, 'from the kill to the launcher\'s exit (ms)').to.be.below(3000 + 2000);
      expect(r.code, r.out).to.equal(137);
      expect(r.out).to.match(/rnnkit-run: rank 1 exited with signal SIGKILL; stopping the other ranks/);
      for (const rank of [0, 2]) {
        const m = new RegExp(`^\\[rank ${rank}\\] failed ERR_RNNKIT_DIST after (\\d+) ms`, 'm').exec(r.out);
        expect(m, r.out).to.not.equal(null);
      }
      for (const pid of pids.values()) expect(alive(pid), `pid ${pid} still running`).to.equal(false);
    });

    it('passes SIGTERM to the ranks and exits with their status', async function () {
      const port = await freePort();
      let sent = false;
      const r = await runLauncher(['--nproc-per-node', '2', '--master-port', String(port), rankScript, 'loop', '--steps', '1000000', '--exit-on-sigterm', '3'], {
        onLine: (line, child) => {
          if (!sent && /^\[rank 1\] step 2 /.test(line)) {
            sent = true;
            child.kill('SIGTERM');
          }
        },
      });
      expect(r.code, r.out).to.equal(3);
      expect(r.out).to.match(/rnnkit-run: SIGTERM: passing it to the ranks/);
      expect(r.out).to.match(/^\[rank 0\] got SIGTERM$/m).and.match(/^\[rank 1\] got SIGTERM$/m);
    });
  });
});
