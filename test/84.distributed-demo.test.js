'use strict';
// The main job, data-parallel: examples/demo.js --nproc 2 starts two ranks through rnnkit-run,
// trains through nn.DistributedDataParallel and, from rank 0 alone, reports the held-out
// perplexity and saves its checkpoint.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { skipWithout } = require('./dist/ranks');

const demo = path.join(__dirname, '..', 'examples', 'demo.js');

describe('demo --nproc 2 (through rnnkit-run)', function () {
  let dir;
  before(function () {
    skipWithout(this, 'gloo');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-ddp-demo-'));
  });
  after(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('trains on 2 ranks and reports perplexity from rank 0', function () {
    const out = execFileSync(process.execPath, [demo, '--quick', '--nproc', '2', '--steps', '3', '--out', dir],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 120000 });
    expect(out).to.match(/^\[rank 0\] {3}parallel 2 ranks \(gloo [\d.]+, tcp on 127\.0\.0\.1\), DistributedDataParallel/m);
    expect(out).to.match(/^\[rank 0\] trained 3 steps \(\d+ tokens on 2 ranks\)/m);
    const m = /^\[rank 0\] held-out loss ([\d.]+) nats\/char, perplexity ([\d.]+)/m.exec(out);
    expect(m, out).to.not.equal(null);
    expect(Math.exp(Number(m[1]))).to.be.closeTo(Number(m[2]), 0.05 * Number(m[2]));
    expect(out).to.not.match(/^\[rank 1\]/m);
    expect(fs.existsSync(path.join(dir, 'checkpoint', 'model.safetensors'))).to.equal(true);
  });
});
