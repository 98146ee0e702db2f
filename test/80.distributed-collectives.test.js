'use strict';
// Collectives over Gloo on loopback: 2 and 3 ranks in separate processes, each collective
// checked against the same reduction of every rank's input computed in one process in float64
// (sum/avg within float32 summation error; max/min, broadcast, allGather exactly), every rank's
// result bit-identical, both rendezvous methods (tcp://, file://), and the barrier.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');
const { runRanks, expectClean, skipWithout, tempDir } = require('./dist/ranks');

const rankScript = path.join(__dirname, 'dist', 'rank.js');

function checkCollectives(results) {
  const p = results.length;
  for (const r of results) {
    expect(r.worldSize).to.equal(p);
    for (const c of r.checks) {
      expect(c.error, `rank ${r.rank}: ${c.what}: error ${c.error} × the float32 bound`).to.be.at.most(1);
      expect(c.same, `${c.what} returns its tensor`).to.equal(true);
    }
  }
  for (let i = 0; i < results[0].checks.length; i++) {
    const hashes = new Set(results.map((r) => r.checks[i].hash));
    expect(hashes.size, `${results[0].checks[i].what}: every rank holds the same bits`).to.equal(1);
  }
  const lastArrival = Math.max(...results.map((r) => r.arrived));
  for (const r of results) expect(r.left, `rank ${r.rank} left the barrier before the last rank arrived`).to.be.at.least(lastArrival - 5);
}

describe('distributed collectives (gloo, loopback)', function () {
  before(function () {
    skipWithout(this, 'gloo');
  });

  for (const p of [2, 3]) {
    it(`${p} ranks over tcp:// (env): allReduce sum/avg/max/min, broadcast from every rank, allGather, barrier, sync twins`, async function () {
      const results = expectClean(await runRanks('collectives', p));
      expect(results[0].description).to.match(/^gloo \d+\.\d+\.\d+, tcp on 127\.0\.0\.1$/);
      checkCollectives(results);
    });
  }

  it('3 ranks over file:// rendezvous; the last rank out removes the rendezvous files', async function () {
    const dir = tempDir('rnnkit-rdzv-');
    try {
      const results = expectClean(await runRanks('collectives', 3, { env: () => ({ TEST_INIT_METHOD: `file://${dir}` }) }));
      checkCollectives(results);
      expect(fs.readdirSync(dir).filter((f) => f.startsWith('key-'))).to.deep.equal([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('ranks that disagree (sizes, ops, src, which collective) get ERR_RNNKIT_DIST naming each rank, and the group stays usable', async function () {
    const results = expectClean(await runRanks('mismatch', 2));
    for (const r of results) {
      expect(r.errors.every((e) => e && e.code === 'ERR_RNNKIT_DIST'), JSON.stringify(r.errors)).to.equal(true);
      expect(r.errors[0].message).to.include('rank 0: allReduce(sum) of 10 values').and.include('rank 1: allReduce(sum) of 11 values');
      expect(r.errors[1].message).to.include('allReduce(sum)').and.include('allReduce(max)');
      expect(r.errors[2].message).to.include('broadcast(src 0)').and.include('broadcast(src 1)');
      expect(r.errors[3].message).to.include('rank 0: barrier').and.include('rank 1: allGather of 3 values');
      expect(r.errors[4].message).to.include('rank 0: allReduce(sum) of 1016 values').and.include('rank 1: allReduce(sum) of 1017 values');
      expect(r.after).to.deep.equal([2, 2, 2, 2, 2, 2]);
    }
    expect(results[0].errors).to.deep.equal(results[1].errors);
  });
});

describe('distributed collectives (mpi under mpiexec)', function () {
  before(function () {
    skipWithout(this, 'mpi');
  });

  // mpiexec (MPICH's hydra) starts the ranks; the results come back through files.
  function mpiexec(n, scenario, env = {}) {
    const dir = tempDir('rnnkit-mpi-');
    const r = spawnSync('mpiexec', ['-n', String(n), process.execPath, rankScript, scenario], {
      env: { ...process.env, TEST_BACKEND: 'mpi', TEST_RESULT_DIR: dir, TEST_SEED: String(Math.floor(Math.random() * 1e9)), RNNKIT_NUM_THREADS: '1', ...env },
      encoding: 'utf8', timeout: 60000,
    });
    const results = fs.readdirSync(dir).sort().map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
    fs.rmSync(dir, { recursive: true, force: true });
    return { status: r.status, output: `${r.stdout}\n${r.stderr}`, results };
  }

  for (const p of [2, 3]) {
    it(`mpiexec -n ${p}: the same collectives checks, on backend 'auto' (mpi when under mpiexec)`, function () {
      const run = mpiexec(p, 'collectives', { TEST_BACKEND: 'auto' });
      expect(run.status, run.output).to.equal(0);
      expect(run.results.length, run.output).to.equal(p);
      expect(run.results[0].description).to.match(/^(MPICH|Open MPI)/);
      checkCollectives(run.results);
    });
  }

  it('a rank that dies: mpiexec ends the job, nobody hangs', function () {
    const started = Date.now();
    const run = mpiexec(2, 'peer-dies', { TEST_TIMEOUT_MS: '3000' });
    expect(run.status, run.output).to.not.equal(0);
    expect(Date.now() - started).to.be.below(20000);
  });
});

