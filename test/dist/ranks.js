'use strict';
// Starts the ranks of a distributed test on loopback: each is `node test/dist/rank.js <scenario>`
// with RANK, WORLD_SIZE, MASTER_ADDR=127.0.0.1 and a free MASTER_PORT, and reports one JSON line
// on stdout, which runRanks parses. Used by the 8x.distributed-*.test.js files.
const { spawn } = require('child_process');
const fs = require('fs');
const net = require('net');
const path = require('path');

const rankScript = path.join(__dirname, 'rank.js');

/** A TCP port that was free a moment ago. */
function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Why the distributed tests cannot run here, or null (RNNKIT_REQUIRE_DIST=1 turns a skip into a failure). */
function distUnavailable(backend = 'gloo') {
  const status = global.rnnkit.distributed.backendStatus(backend);
  if (status.available) return null;
  if (process.env.RNNKIT_REQUIRE_DIST === '1') throw new Error(`RNNKIT_REQUIRE_DIST=1 but ${status.reason}`);
  return status.reason;
}

/** A seed for the ranks' inputs: TEST_SEED when set (to reproduce a failure), else a fresh one. */
function newSeed() {
  return Number(process.env.TEST_SEED || Math.floor(Math.random() * 1e9));
}

/** In a mocha before(): skips the suite (saying why) when `backend` cannot run here. */
function skipWithout(context, backend) {
  const why = distUnavailable(backend);
  if (why) {
    console.log(`      skipped: ${why}`);
    context.skip();
  }
}

/**
 * Runs `scenario` on `worldSize` ranks; resolves with each rank's { code, signal, result, stdout, stderr }.
 * `env(rank)` adds per-rank variables; `only` starts just those ranks; `onLine(rank, line, child)` sees output;
 * `seed` seeds the inputs (runs that must see the same data pass the same one).
 */
async function runRanks(scenario, worldSize, { env = () => ({}), only = null, onLine = null, timeoutMs = 60000, args = [], seed = newSeed() } = {}) {
  const port = await freePort();
  const ranks = only || Array.from({ length: worldSize }, (_, r) => r);
  const runs = ranks.map((rank) => new Promise((resolve) => {
    const child = spawn(process.execPath, [rankScript, scenario, ...args], {
      env: {
        ...process.env, RANK: String(rank), WORLD_SIZE: String(worldSize), LOCAL_RANK: String(rank),
        MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), TEST_SEED: String(seed), RNNKIT_NUM_THREADS: '1', ...env(rank),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (c) => {
      stdout += c;
      if (onLine) for (const line of String(c).split('\n').filter(Boolean)) onLine(rank, line, child);
    });
    child.stderr.on('data', (c) => { stderr += c; });
    child.on('close', (code, signal) => {
      clearTimeout(killer);
      const last = stdout.trim().split('\n').filter((l) => l.startsWith('{')).pop();
      let result = null;
      try {
        result = last ? JSON.parse(last) : null;
      } catch {
        result = null;
      }
      resolve({ rank, code, signal, result, stdout, stderr, seed });
    });
  }));
  return Promise.all(runs);
}

/** Fails with every rank's output when a rank did not end cleanly with a result. */
function expectClean(runs) {
  for (const r of runs) {
    expect(r.code, `rank ${r.rank} (seed ${r.seed}) exited with ${r.code}/${r.signal}\n${r.stdout}\n${r.stderr}`).to.equal(0);
    expect(r.result, `rank ${r.rank} printed no result\n${r.stdout}\n${r.stderr}`).to.not.equal(null);
  }
  return runs.map((r) => r.result);
}

/** A fresh temporary directory for a file:// rendezvous. */
function tempDir(prefix) {
  return fs.mkdtempSync(path.join(require('os').tmpdir(), prefix));
}

module.exports = { runRanks, expectClean, freePort, skipWithout, tempDir, newSeed };
