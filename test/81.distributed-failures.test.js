'use strict';
// A distributed job never hangs and never corrupts: a dead or hung peer makes every other rank's
// pending collective fail with ERR_RNNKIT_DIST within the timeout (and every later call at once);
// rendezvous failures name what is wrong; bad arguments are typed errors before anything is sent;
// a backend whose library is missing says what to install.
const fs = require('fs');
const path = require('path');
const { runRanks, expectClean, skipWithout, tempDir } = require('./dist/ranks');

const { distributed, tensor, zeros } = rnnkit;
const TIMEOUT = 2500;

describe('distributed failures (gloo, loopback)', function () {
  before(function () {
    skipWithout(this, 'gloo');
  });

  const failEnv = () => ({ TEST_TIMEOUT_MS: String(TIMEOUT) });

  for (const count of [100000, 10]) {
    it(`a rank that dies mid-run (${count} values): the others fail with ERR_RNNKIT_DIST well within the timeout`, async function () {
      const runs = await runRanks('peer-dies', 3, { env: () => ({ ...failEnv(), TEST_COUNT: String(count) }) });
      expect(runs[1].code).to.equal(9);
      for (const r of [runs[0], runs[2]]) {
        expect(r.code, r.stderr).to.equal(0);
        expect(r.result.failure.code).to.equal('ERR_RNNKIT_DIST');
        expect(r.result.failure.message).to.match(/allReduce failed/);
        expect(r.result.failure.elapsed, 'failure delay (ms)').to.be.below(TIMEOUT + 1000);
        expect(r.result.again.code).to.equal('ERR_RNNKIT_DIST');
        expect(r.result.again.message).to.match(/broken by an earlier failure/);
        expect(r.result.again.elapsed).to.be.below(200);
      }
    });
  }

  for (const count of [100000, 10]) {
    it(`a rank that hangs (alive, never calling again; ${count} values): the others fail with ERR_RNNKIT_DIST at the timeout`, async function () {
      let hung = null;
      const runs = await runRanks('peer-hangs', 2, {
        env: () => ({ ...failEnv(), TEST_COUNT: String(count) }),
        onLine: (rank, line, child) => {
          if (rank === 1) hung = child;
          if (rank === 0 && line.startsWith('{')) hung.kill('SIGKILL'); // rank 0 has reported
        },
      });
      const r = runs[0];
      expect(r.code, r.stderr).to.equal(0);
      expect(r.result.failure.code).to.equal('ERR_RNNKIT_DIST');
      expect(r.result.failure.message).to.match(/[Tt]imed out/);
      expect(r.result.failure.elapsed).to.be.within(TIMEOUT * 0.9, TIMEOUT + 1500);
    });
  }

  it('rendezvous: a rank that never comes is named after the timeout', async function () {
    const runs = await runRanks('join', 3, { env: failEnv, only: [0, 1] });
    for (const r of runs) {
      expect(r.result.ok).to.equal(false);
      expect(r.result.code).to.equal('ERR_RNNKIT_DIST');
      expect(r.result.message).to.match(/rank 2 of 3 did not join/);
      expect(r.result.elapsed).to.be.within(TIMEOUT * 0.9, TIMEOUT + 1500);
    }
  });

  it('rendezvous: rank 0 missing, a world-size mismatch and a rank started twice are named', async function () {
    const quick = () => ({ TEST_TIMEOUT_MS: '1500' });
    const noZero = await runRanks('join', 2, { env: quick, only: [1] });
    expect(noZero[0].result.message).to.match(/could not connect to the rendezvous store at 127\.0\.0\.1:\d+.*is rank 0 running/);

    const sizes = await runRanks('join', 2, { env: (r) => ({ ...quick(), WORLD_SIZE: r === 1 ? '3' : '2' }) });
    expect(sizes[1].result.code).to.equal('ERR_RNNKIT_DIST');
    expect(sizes[1].result.message).to.match(/rank 0 joined with world size and backend '2 gloo', rank 1 with '3 gloo'/);

    const twice = await runRanks('join', 3, { env: (r) => ({ ...quick(), RANK: r === 2 ? '1' : String(r) }) });
    const messages = twice.map((r) => r.result.message || '');
    expect(messages.some((m) => /rank 1 was claimed twice/.test(m)), messages.join('\n')).to.equal(true);
  });

  it('file:// rendezvous: files left by a crashed job are reported, not joined', async function () {
    const dir = tempDir('rnnkit-stale-');
    try {
      const first = await runRanks('join', 2, { env: () => ({ ...failEnv(), TEST_INIT_METHOD: `file://${dir}` }), only: [0] });
      expect(first[0].result.ok).to.equal(false); // rank 1 never came: its files stay behind
      const second = await runRanks('join', 1, { env: () => ({ ...failEnv(), TEST_INIT_METHOD: `file://${dir}`, WORLD_SIZE: '2' }), only: [0] });
      expect(second[0].result.message).to.match(/claimed twice.*holds files of an earlier job/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('distributed arguments and backends (in this process)', function () {
  let pg = null;
  before(async function () {
    skipWithout(this, 'gloo');
    pg = await distributed.initProcessGroup({ backend: 'gloo', rank: 0, worldSize: 1, timeoutMs: 5000, initMethod: 'env://' });
  });
  after(async () => {
    if (pg) await pg.destroy();
  });

  it('a world of one runs every collective as the identity (and avg as itself)', async function () {
    expect(pg.rank).to.equal(0);
    expect(pg.worldSize).to.equal(1);
    const t = tensor([1, -2, 3.5], [3]);
    await pg.allReduce(t, { op: 'avg' });
    await pg.broadcast(t);
    expect(Array.from(t.data)).to.deep.equal([1, -2, 3.5]);
    const g = await pg.allGather(t);
    expect(g.shape).to.deep.equal([1, 3]);
    expect(Array.from(g.data)).to.deep.equal([1, -2, 3.5]);
    await pg.barrier();
  });

  it('initProcessGroup refuses unknown keys, bad values and bad environment variables with ERR_RNNKIT_ARG', async function () {
    const bad = [
      [{ backend: 'gloo', worldsize: 2 }, /unknown key worldsize in initProcessGroup options \(allowed: backend, rank, worldSize/],
      [{ backend: 'tcp' }, /backend must be one of 'auto', 'gloo', 'mpi', 'nccl'/],
      [{ backend: 'gloo', rank: 2, worldSize: 2 }, /rank 2 is not below worldSize 2/],
      [{ backend: 'gloo', rank: -1, worldSize: 2 }, /rank must be an integer/],
      [{ backend: 'gloo', rank: 0, worldSize: 1.5 }, /worldSize must be an integer/],
      [{ backend: 'gloo', worldSize: 2 }, /rank is not given and RANK is not set/],
      [{ backend: 'gloo', initMethod: 'http://x:1' }, /initMethod must be 'tcp:\/\/host:port'/],
      [{ backend: 'gloo', initMethod: 'tcp://x:99999' }, /port must be an integer in \[1, 65535\]/],
      [{ backend: 'gloo', timeoutMs: 0 }, /timeoutMs must be an integer in \[1,/],
      [{ backend: 'gloo', timeoutMs: NaN }, /timeoutMs must be an integer/],
      ['gloo', /options must be an object/],
    ];
    for (const [options, message] of bad) {
      const err = await expectReject(distributed.initProcessGroup(options), 'ERR_RNNKIT_ARG');
      expect(err.message).to.match(message);
    }
    const saved = process.env.WORLD_SIZE;
    process.env.WORLD_SIZE = 'two';
    try {
      const err = await expectReject(distributed.initProcessGroup({ backend: 'gloo' }), 'ERR_RNNKIT_ARG');
      expect(err.message).to.match(/environment variable WORLD_SIZE must be an integer \(got 'two'\)/);
    } finally {
      if (saved === undefined) delete process.env.WORLD_SIZE;
      else process.env.WORLD_SIZE = saved;
    }
  });

  it('collectives refuse bad tensors and options with typed errors before anything is sent', async function () {
    const t = zeros([4]);
    let err = await expectReject(pg.allReduce(t, { op: 'prod' }), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/op must be one of 'sum', 'avg', 'max', 'min'/);
    err = await expectReject(pg.allReduce(t, { opp: 'sum' }), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/unknown key opp in allReduce options \(allowed: op\)/);
    err = await expectReject(pg.broadcast(t, { src: 1 }), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/broadcast src must be an integer in \[0, 0\]/);
    await expectReject(pg.allReduce(new Float32Array(4)), 'ERR_RNNKIT_ARG');
    const gone = zeros([2]);
    gone.dispose();
    await expectReject(pg.allReduce(gone), 'ERR_RNNKIT_DISPOSED');
    await expectReject(pg.allGather(gone), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => pg.allReduceSync(t, { op: 1 }), 'ERR_RNNKIT_ARG');
  });

  it('a destroyed group refuses every call with ERR_RNNKIT_DIST; destroy is idempotent', async function () {
    const g = await distributed.initProcessGroup({ backend: 'gloo', rank: 0, worldSize: 1, timeoutMs: 5000 });
    const t = zeros([3]);
    const pending = g.allReduce(t);
    await g.destroy();
    await pending; // queued before destroy: it ran first
    await g.destroy();
    await expectReject(g.allReduce(t), 'ERR_RNNKIT_DIST');
    await expectReject(g.barrier(), 'ERR_RNNKIT_DIST');
    expectCode(() => g.broadcastSync(t), 'ERR_RNNKIT_DIST');
    expect(String(g)).to.match(/destroyed/);
  });

  it('the native process group survives hostile arguments', function () {
    const { backendAddon } = require('../dist/distributed/addon');
    const addon = backendAddon('gloo');
    const hostile = [undefined, null, 1, 'x', {}, [], { rank: 0 }, new Float32Array(2), BigInt(1), () => 1];
    for (const h of hostile) expectCode(() => new addon.ProcessGroup(h), 'ERR_RNNKIT_ARG');
    const good = { rank: 0, worldSize: 1, localRank: 0, timeoutMs: 1000, initKind: 'tcp', host: '127.0.0.1', port: 0, path: '', socketInterface: '' };
    for (const [key, value] of [['rank', 1], ['worldSize', 0], ['timeoutMs', -1], ['port', 70000], ['host', 5], ['rank', 0.5]]) {
      expectCode(() => new addon.ProcessGroup({ ...good, [key]: value }), 'ERR_RNNKIT_ARG');
    }
    const g = new addon.ProcessGroup(good);
    for (const h of hostile) expectCode(() => g.allReduce(h, 0, 0, true), h instanceof Float32Array ? 'ERR_RNNKIT_DIST' : 'ERR_RNNKIT_DTYPE');
    expectCode(() => g.allReduce(new Float32Array(2), 0, -1, true), 'ERR_RNNKIT_ARG');
    expectCode(() => g.allReduce(new Float32Array(2), 7, 0, true), 'ERR_RNNKIT_ARG');
    expectCode(() => g.barrier(true), 'ERR_RNNKIT_DIST'); // not connected
    g.destroy(true);
    expectCode(() => g.barrier(true), 'ERR_RNNKIT_ARG');
  });

  it('a backend that is not built or whose library is missing throws ERR_RNNKIT_DIST naming what to install', async function () {
    const status = distributed.backends();
    expect(status.map((s) => s.name)).to.deep.equal(['gloo', 'mpi', 'nccl']);
    const nccl = status.find((s) => s.name === 'nccl');
    if (nccl.available) this.skip(); // a machine with NCCL: nothing to report
    expect(nccl.reason).to.match(/libnccl\.so\.2|not built/);
    const err = await expectReject(distributed.initProcessGroup({ backend: 'nccl', rank: 0, worldSize: 1 }), 'ERR_RNNKIT_DIST');
    expect(err.message).to.match(/libnccl2|libnccl\.so\.2/);
    const empty = tempDir('rnnkit-nodist-');
    try {
      const { execFileSync } = require('child_process');
      const out = execFileSync(process.execPath, ['-e', `
        const rk = require(${JSON.stringify(path.join(__dirname, '..'))});
        rk.distributed.initProcessGroup({ backend: 'gloo' }).catch((e) => console.log(e.code, e.message));`],
      { env: { ...process.env, RNNKIT_DIST_DIR: empty }, encoding: 'utf8' });
      expect(out).to.match(/^ERR_RNNKIT_DIST the gloo backend is not built: .*apt-get install libgloo-dev.*npm run build:dist/);
    } finally {
      fs.rmSync(empty, { recursive: true, force: true });
    }
  });
});
