'use strict';
// The prepared GPU run (native/tools/gpu-check.sh) and its native checkers, as far as a machine
// without a GPU can check them: the plan fits one 540 s command in the right order, and a checker
// that finds no device skips (exit 0) or, with RNNKIT_REQUIRE_GPU=1, fails naming the CUDA error
// (exit 2), so a driver that does not answer on a GPU box cannot read as a pass.
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.join(__dirname, '..');
const script = path.join(root, 'native', 'tools', 'gpu-check.sh');

describe('gpu-check.sh --plan', function () {
  it('lists every step with its budget, within 540 s, checks before timings', function () {
    const r = spawnSync('bash', [script, '--plan'], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const rows = r.stdout.split('\n').filter((l) => /^\S+\s+\d+s\s+(prep|check|timing)\s/.test(l))
      .map((l) => { const [name, budget, kind] = l.split(/\s+/); return { name, budget: parseInt(budget, 10), kind }; });
    const total = rows.reduce((s, x) => s + x.budget, 0);
    expect(r.stdout).to.contain(`total ${total}s of budgets`);
    expect(total).to.be.at.most(540);
    const order = rows.map((x) => x.name);
    for (const name of ['build', 'gpu_check', 'gpu_check_train', 'gpu_check_nn', 'gpu_check_recurrent', 'cpu_avx512', 'mocha_gpu',
      'mocha_cpu_avx512', 'bench_recurrent', 'torch_rnn']) {
      expect(order, name).to.include(name);
    }
    const at = (name) => order.indexOf(name);
    expect(at('gpu_check_recurrent')).to.be.below(at('mocha_gpu'));
    expect(at('mocha_gpu')).to.be.below(at('mocha_cpu_avx512'));
    const firstTiming = rows.findIndex((x) => x.kind === 'timing');
    expect(rows.slice(firstTiming).every((x) => x.kind === 'timing')).to.equal(true);
  });

  it('refuses an unknown argument with its usage', function () {
    const r = spawnSync('bash', [script, '--frobnicate'], { encoding: 'utf8' });
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/usage: bash native\/tools\/gpu-check.sh \[--pack \| --plan\]/);
  });
});

describe('native GPU checkers without a device', function () {
  const tools = ['gpu_check', 'gpu_check_train', 'gpu_check_nn', 'gpu_check_recurrent'].map((t) => path.join(root, 'build-cuda', t));

  before(function () {
    if (!tools.every((t) => fs.existsSync(t))) {
      console.log('      skipped: the CUDA tools are not built (node native/tools/build-cuda.js --cuda ON --tools)');
      this.skip();
    }
    const probe = spawnSync(tools[0], ['--probe'], { encoding: 'utf8', env: { ...process.env, RNNKIT_REQUIRE_GPU: '' } });
    if (!/no CUDA device: skipped/.test(probe.stdout)) this.skip();  // a device is present: gpu-check.sh runs them for real
  });

  for (const name of ['gpu_check', 'gpu_check_train', 'gpu_check_nn', 'gpu_check_recurrent']) {
    it(`${name} skips with the reason, and fails with the CUDA error under RNNKIT_REQUIRE_GPU=1`, function () {
      const tool = path.join(root, 'build-cuda', name);
      const env = { ...process.env };
      delete env.RNNKIT_REQUIRE_GPU;
      const skipped = spawnSync(tool, [], { encoding: 'utf8', env });
      expect(skipped.status).to.equal(0);
      expect(skipped.stdout).to.match(new RegExp(`^${name}: no CUDA device: skipped \\(.*cuda\\w*Error\\w* \\(\\d+\\)`));
      const required = spawnSync(tool, [], { encoding: 'utf8', env: { ...env, RNNKIT_REQUIRE_GPU: '1' } });
      expect(required.status).to.equal(2);
      expect(required.stdout).to.match(new RegExp(`^${name}: FAIL: no usable CUDA device: .*cuda\\w*Error`));
      const bad = spawnSync(tool, ['--frobnicate'], { encoding: 'utf8', env });
      expect(bad.status).to.equal(2);
      expect(bad.stderr).to.contain('unknown option --frobnicate');
    });
  }
});
