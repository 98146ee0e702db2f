'use strict';
// State dicts move between rnnkit and PyTorch by name. test/fixtures/torch/ holds a state dict
// written by PyTorch 1.13 (make_fixture.py: Embedding with a padding row, a 2-layer bidirectional
// LSTM with a projection, a GRU, a Linear, over packed sequences of unequal lengths) with its
// inputs, outputs and parameter gradients. The same model built from nn modules loads it with
// strict names and reproduces the outputs and the gradients; its state dict has PyTorch's names,
// shapes and order. The reverse direction, a file written by saveSafetensors loaded into the
// torch.nn model (check_rnnkit_file.py), runs when python3 can import torch.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { expectClose } = require('./support/close');

const { nn } = rnnkit;
const dir = path.join(__dirname, 'fixtures', 'torch');
const [V, E, H, P, G] = [11, 6, 5, 3, 4];

class Model extends nn.Module {
  constructor() {
    super();
    this.embed = new nn.Embedding({ numEmbeddings: V, embeddingDim: E, paddingIdx: 0, seed: 1 });
    this.lstm = new nn.LSTM({ inputSize: E, hiddenSize: H, numLayers: 2, bidirectional: true, projSize: P, seed: 2 });
    this.gru = new nn.GRU({ inputSize: 2 * P, hiddenSize: G, seed: 3 });
    this.head = new nn.Linear({ inFeatures: G, outFeatures: V, seed: 4 });
  }

  async forward(ids, lengths) {
    const [T, B] = [ids.length / lengths.length, lengths.length];
    const x = await this.embed.forward(ids, [T, B]);
    const l = await this.lstm.forward(x, { seqLengths: lengths });
    const g = await this.gru.forward(l.y, { seqLengths: lengths });
    return { logits: await this.head.forward(g.y), h: l.hy, c: l.cy, h2: g.hy };
  }
}

// A tensor's values on the host (a Float32Array as it is).
const host = (t) => (t instanceof Float32Array ? t : t.readSync());

// The first Python that can import torch: RNNKIT_PYTHON, python3 on the PATH, Debian's python3.
function pythonWithTorch() {
  const candidates = [process.env.RNNKIT_PYTHON, 'python3', '/usr/bin/python3'].filter(Boolean);
  return candidates.find((py) => spawnSync(py, ['-c', 'import torch'], { stdio: 'ignore', timeout: 60000 }).status === 0) ?? null;
}

describe('nn state dicts and PyTorch (test/fixtures/torch)', function () {
  const state = rnnkit.loadSafetensors(path.join(dir, 'torch-model.safetensors'));
  const io = rnnkit.loadSafetensors(path.join(dir, 'torch-model-io.safetensors'));
  const ids = Int32Array.from(io['input.ids'].data);
  const lengths = Int32Array.from(io['input.lengths'].data);
  const targets = Int32Array.from(io['input.targets'].data);

  it('the state dict has PyTorch\'s names, shapes and order', function () {
    const ours = Object.entries(new Model().stateDict()).map(([n, t]) => [n, t.shape]);
    const theirs = Object.entries(state).map(([n, t]) => [n, t.shape]);
    expect(ours).to.deep.equal(theirs);
    expect(ours.map(([n]) => n)).to.include.members(['lstm.weight_hh_l0_reverse', 'lstm.weight_hr_l1', 'lstm.bias_ih_l1', 'gru.weight_ih_l0']);
  });

  it('loads PyTorch\'s state dict by name (strict) and reproduces its outputs and parameter gradients', async function () {
    const model = new Model();
    expect(model.loadStateDict(state, { strict: true })).to.deep.equal({ missingKeys: [], unexpectedKeys: [] });
    const out = await model.forward(ids, lengths);
    expectClose(host(out.logits), host(io['expect.logits']), { rel: 2e-4, scale: 'max', floor: 1e-3, what: 'logits' });
    expectClose(host(out.h), host(io['expect.lstm_h']), { rel: 2e-4, scale: 'max', floor: 1e-3, what: 'LSTM h' });
    expectClose(host(out.c), host(io['expect.lstm_c']), { rel: 2e-4, scale: 'max', floor: 1e-3, what: 'LSTM c' });
    expectClose(host(out.h2), host(io['expect.gru_h']), { rel: 2e-4, scale: 'max', floor: 1e-3, what: 'GRU h' });
    const loss = await nn.crossEntropy(out.logits, targets);
    expect(loss.item()).to.be.closeTo(io['expect.loss'].item(), 1e-5);
    await loss.backward();
    for (const [name, p] of model.namedParameters()) expectClose(host(p.grad), host(io[`grad.${name}`]), { rel: 1e-3, scale: 'max', floor: 1e-3, what: `grad of ${name}` });
  });

  it('a file written by saveSafetensors loads into the torch.nn model by name and gives rnnkit\'s outputs', async function () {
    const python = pythonWithTorch();
    if (!python) {
      process.stdout.write('      (skipped: no python3 with torch; Debian: apt-get install python3-torch)\n');
      this.skip();
      return;
    }
    const model = new Model();
    model.loadStateDict(state);
    // Train one step so that the values differ from PyTorch's own.
    const opt = new rnnkit.Adam(model.parameters(), { lr: 0.05 });
    await (await nn.crossEntropy((await model.forward(ids, lengths)).logits, targets)).backward();
    await opt.step();
    const out = await nn.noGrad(() => model.forward(ids, lengths));
    const loss = await nn.crossEntropy(out.logits, targets);
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-torch-'));
    try {
      rnnkit.saveSafetensors(path.join(tmp, 'model.safetensors'), model.stateDict());
      rnnkit.saveSafetensors(path.join(tmp, 'io.safetensors'), {
        'input.ids': io['input.ids'], 'input.lengths': io['input.lengths'], 'input.targets': io['input.targets'],
        'expect.logits': out.logits, 'expect.loss': loss,
      });
      const report = execFileSync(python, [path.join(dir, 'check_rnnkit_file.py'), path.join(tmp, 'model.safetensors'),
        path.join(tmp, 'io.safetensors')], { encoding: 'utf8', timeout: 120000 });
      expect(report).to.match(/tensors loaded by name/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
