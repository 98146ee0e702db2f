'use strict';
// The contract of the models issue, run as written there (small sizes): the names it fixes are
// exported from require('rnnkit') and do what it says.
const fs = require('fs');
const os = require('os');
const path = require('path');

describe('nn: the contract example, as written', function () {
  it('trains, names its parameters like PyTorch, round-trips its state dict, and switches modes', async function () {
    const rk = require('..');
    const { nn } = rk;
    class CharLM extends nn.Module {
      constructor(V, H) {
        super();
        this.embed = new nn.Embedding({ numEmbeddings: V, embeddingDim: 64 });
        this.rnn = new nn.LSTM({ inputSize: 64, hiddenSize: H, numLayers: 2, dropout: 0.1 });
        this.head = new nn.Linear({ inFeatures: H, outFeatures: V });
      }

      async forward(ids, shape, state) {
        const x = await this.embed.forward(ids, shape);
        const { y, hy, cy } = await this.rnn.forward(x, state);
        return { logits: await this.head.forward(y), state: { hx: hy.detach(), cx: cy.detach() } };
      }
    }
    const [V, T, B] = [13, 6, 3];
    const model = new CharLM(V, 16);
    const opt = new rk.Adam(model.parameters(), { lr: 3e-3 });
    const ids = Int32Array.from({ length: T * B }, (_, k) => (k * 5) % V);
    const targets = Int32Array.from({ length: T * B }, (_, k) => (k * 5 + 1) % V);
    let prev;
    const before = Array.from(model.head.bias.data);
    for (let step = 0; step < 2; step++) {
      const { logits, state } = await model.forward(ids, [T, B], prev);
      const loss = await nn.crossEntropy(logits, targets);
      await loss.backward();
      expect(model.parameters().every((p) => p.grad !== null)).to.equal(true);
      await rk.clipGradNorm(model.parameters(), 5);
      await opt.step();
      opt.zeroGrad();
      prev = state;
    }
    expect(Array.from(model.head.bias.data)).to.not.deep.equal(before);
    const names = model.namedParameters().map(([n]) => n);
    expect(names[0]).to.equal('embed.weight');
    expect(names[1]).to.equal('rnn.weight_ih_l0');
    expect(names[names.length - 1]).to.equal('head.bias');
    expect(Object.keys(model.stateDict())).to.deep.equal(names);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-contract-'));
    try {
      rk.saveSafetensors(path.join(dir, 'model.safetensors'), model.stateDict());
      const copy = new CharLM(V, 16);
      copy.loadStateDict(rk.loadSafetensors(path.join(dir, 'model.safetensors')), { strict: true });
      model.eval();
      copy.eval();
      const a = await nn.noGrad(async () => (await model.forward(ids, [T, B])).logits);
      const b = await nn.noGrad(async () => (await copy.forward(ids, [T, B])).logits);
      expect(a.requiresGrad).to.equal(false);
      expect(Array.from(b.data)).to.deep.equal(Array.from(a.data));
      model.train();
      expect(model.rnn.training).to.equal(true);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    for (const name of ['Module', 'Embedding', 'LSTM', 'GRU', 'RNN', 'Linear', 'Dropout', 'RMSNorm', 'Sequential', 'tanh', 'sigmoid',
      'relu', 'add', 'mul', 'concat', 'mean', 'sum', 'reshape', 'crossEntropy', 'mseLoss', 'noGrad']) {
      expect(typeof nn[name], `nn.${name}`).to.equal('function');
    }
    expect(typeof rk.autograd.queueCallback).to.equal('function');
    expect(typeof rk.Tensor.prototype.registerPostAccumulateGradHook).to.equal('function');
  });
});
