'use strict';
// The main job must not rot: run examples/demo.js for a few steps (--quick) in a child process,
// check its report and its files (checkpoint in safetensors with PyTorch names, loss curve), and
// resume from the checkpoint.
const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const train = require('../dist/train');

const demo = path.join(__dirname, '..', 'examples', 'demo.js');

function runDemo(args) {
  return execFileSync(process.execPath, [demo, '--quick', ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 60000 });
}

describe('demo (examples/demo.js --quick)', function () {
  let dir;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-demo-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('trains, evaluates, saves a PyTorch-named safetensors checkpoint and a loss curve, and samples text', function () {
    const out = runDemo(['--steps', '3', '--out', dir]);
    expect(out).to.match(/trained 3 steps \(\d+ tokens\)/);
    const m = /held-out loss ([\d.]+) nats\/char, perplexity ([\d.]+)/.exec(out);
    expect(m, out).to.not.equal(null);
    expect(Math.exp(Number(m[1]))).to.be.closeTo(Number(m[2]), 0.05 * Number(m[2]));
    expect(out).to.match(/sample:\n.+/);
    const model = train.decodeSafetensors(fs.readFileSync(path.join(dir, 'checkpoint', 'model.safetensors')));
    const names = Object.keys(model.tensors);
    for (const name of ['lstm.weight_ih_l0', 'lstm.weight_hh_l1', 'lstm.bias_ih_l1', 'decoder.weight', 'decoder.bias']) {
      expect(names).to.include(name);
    }
    expect(model.tensors['lstm.weight_hh_l0'].shape).to.deep.equal([4 * 32, 32]);
    expect(fs.readFileSync(path.join(dir, 'loss.svg'), 'utf8')).to.match(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>$/);
  });

  it('resumes from its checkpoint', function () {
    const out = runDemo(['--steps', '5', '--out', path.join(dir, 'resumed'), '--resume', path.join(dir, 'checkpoint')]);
    expect(out).to.match(/resumed {2}from .* at step 3/);
    expect(out).to.match(/trained 2 steps/);
  });
});
