'use strict';
// The public-API fuzz (test/fuzz/): a target for every exported function, constructor, method and
// accessor (held to the type declarations), and RNNKIT_FUZZ_CALLS (default 100000) hostile calls
// over them in a child process (a crash fails this test instead of ending the suite) under a
// watchdog: every failure an RnnkitError with a code, no hang, correct results afterwards.
// `npm run fuzz -- --calls N --seed S` runs more.
const path = require('path');
const { fork } = require('child_process');
const { freshSeed } = require('./reference/random');
const { publicSurface } = require('./fuzz/surface');
const { targets } = require('./fuzz/api');

describe('fuzzing the public API', function () {
  this.timeout(1800000);
  const calls = Number(process.env.RNNKIT_FUZZ_CALLS || 100000);
  const seed = freshSeed();

  it('has a target for every public function, constructor, method and accessor', () => {
    const surface = publicSurface();
    const names = targets().map((t) => t.name);
    expect(surface.length).to.be.greaterThan(100);
    expect(surface.filter((s) => !names.includes(s)), 'public API the fuzz does not call').to.deep.equal([]);
    expect(names.filter((n) => !surface.includes(n)), 'fuzz targets that are not public API').to.deep.equal([]);
  });

  it(`survives ${calls} hostile calls and still computes correct results (seed ${seed})`, async () => {
    const child = fork(path.join(__dirname, 'fuzz', 'run.js'), ['--calls', String(calls), '--seed', String(seed)], {
      execArgv: ['--expose-gc'], stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    let progress = 0;
    let watchdog;
    const arm = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => child.kill('SIGKILL'), 180000);
    };
    child.on('message', (m) => { progress = m.calls; arm(); });
    arm();
    const [code, signal] = await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    clearTimeout(watchdog);
    const line = out.split('\n').find((l) => l.startsWith('FUZZ '));
    const where = `seed ${seed}, last progress at call ${progress}`;
    if (!line) throw new Error(`the fuzz ended without a summary (exit ${code}, signal ${signal}; ${where}):\n${err.slice(-4000)}`);
    const summary = JSON.parse(line.slice(5));
    const failures = summary.failures.map((f) => `${f.target} (call ${f.call}): ${f.what}${f.args ? `\n  args: ${f.args}` : ''}`);
    expect(failures, `failures (${where}; replay with npm run fuzz -- --calls ${calls} --seed ${seed})`).to.deep.equal([]);
    expect(code).to.equal(0);
    console.log(`      ${summary.calls} calls in ${summary.seconds} s (${summary.callsPerSecond} calls/s) over ${summary.targets} targets`);
  });
});
