'use strict';
// Every public options object refuses a key it does not know with ERR_RNNKIT_ARG naming the key
// and the allowed ones (lib/args.ts), so a typo is never silently ignored; and the typed readers
// refuse values of the wrong type.
const fs = require('fs');
const os = require('os');
const path = require('path');
const {
  tensor, zeros, ones, full, matmul, matmulSync, Recurrent, RMSNorm, rmsNorm, rmsNormSync, rmsNormBackwardSync, Linear,
  crossEntropySync, mseLossSync, SGD, Adam, AdamW, Adagrad, RMSprop, StepLR, CosineAnnealingLR, LinearWarmup,
  clipGradNormSync, saveCheckpoint, loadCheckpoint, tbptt, StepNetBuilder, RecurrentNetwork, recordShapes,
} = rnnkit;

const LSTM = { mode: 'lstm', inputSize: 2, hiddenSize: 3, seed: 1 };

function lstmNet() {
  const b = new StepNetBuilder();
  b.input('x', 2);
  b.state('h', 2);
  b.param('W', ones([2, 2]));
  b.link('x_t', 'x');
  b.link('h_prev', 'h');
  b.fc('gx', 'x_t', 'W');
  b.add('h_t', 'gx', 'h_prev');
  b.link('h_t', 'h', { offset: 1 });
  b.alias('y', 'h', 1);
  return b;
}

// [what, a call with one misspelled key (always named `typo`)]
const calls = [
  ['tensor options', () => tensor([1, 2], [2], { typo: 1 })],
  ['indexTensor options', () => rnnkit.indexTensor([1, 2], [2], { typo: 1 })],
  ['zeros options', () => zeros([2], { typo: 1 })],
  ['ones options', () => ones([2], { typo: 1 })],
  ['full options', () => full([2], 3, { typo: 1 })],
  ['matmul options', () => matmulSync(ones([2, 2]), ones([2, 2]), { typo: true })],
  ['Recurrent options', () => new Recurrent({ ...LSTM, typo: 4 })],
  ['Recurrent forward options', () => new Recurrent(LSTM).forwardSync(zeros([1, 1, 2]), { typo: true })],
  ['Recurrent backward options', () => {
    const op = new Recurrent(LSTM);
    op.backwardSync(op.forwardSync(zeros([1, 1, 2]), { training: true }).saved, { typo: true });
  }],
  ['Recurrent param selector', () => new Recurrent(LSTM).getParam({ layer: 0, direction: 0, kind: 'w_ih', typo: 1 })],
  ['recordShapes config', () => recordShapes({ ...LSTM, typo: 1 }, 'pytorch')],
  ['RMSNorm options (epsilon for eps)', () => new RMSNorm({ size: 4, epsilon: 1e-3, typo: 1 })],
  ['RMSNorm forward options', () => new RMSNorm({ size: 2 }).forwardSync(ones([1, 2]), { typo: 1 })],
  ['RMSNorm backward arguments', () => {
    const n = new RMSNorm({ size: 2 });
    const x = ones([1, 2]);
    n.backwardSync({ x, rrms: n.forwardSync(x).rrms, dy: ones([1, 2]), typo: 1 });
  }],
  ['rmsNorm options', () => rmsNormSync(ones([1, 2]), ones([2]), null, { typo: 1 })],
  ['rmsNormBackward options', () => {
    const x = ones([1, 2]);
    rmsNormBackwardSync(x, rmsNormSync(x, ones([2]), null).rrms, ones([1, 2]), ones([2]), { typo: 1 });
  }],
  ['Linear options (bais for bias)', () => new Linear({ inFeatures: 2, outFeatures: 2, bais: false, typo: 1 })],
  ['Linear backward options', () => {
    const l = new Linear({ inFeatures: 2, outFeatures: 2, seed: 1 });
    l.backwardSync(ones([1, 2]), ones([1, 2]), { typo: true });
  }],
  ['crossEntropy options', () => crossEntropySync(ones([1, 2]), Int32Array.from([0]), { typo: 1 })],
  ['mseLoss options', () => mseLossSync(ones([2]), ones([2]), { typo: 1 })],
  ['SGD options', () => new SGD([ones([2])], { lr: 0.1, typo: 1 })],
  ['Adam options', () => new Adam([ones([2])], { typo: 1 })],
  ['AdamW options', () => new AdamW([ones([2])], { typo: 1 })],
  ['Adagrad options', () => new Adagrad([ones([2])], { typo: 1 })],
  ['RMSprop options', () => new RMSprop([ones([2])], { typo: 1 })],
  ['a param group', () => new SGD([{ params: [ones([2])], typo: 1 }])],
  ['Optimizer.set', () => new SGD([ones([2])]).set('typo', 1)],
  ['an optimizer state dict', () => new SGD([ones([2])]).loadStateDict({ kind: 'SGD', groups: [], state: {}, typo: 1 })],
  ['StepLR options', () => new StepLR(null, { stepSize: 1, typo: 1 })],
  ['CosineAnnealingLR options', () => new CosineAnnealingLR(null, { tMax: 1, typo: 1 })],
  ['LinearWarmup options', () => new LinearWarmup(null, { warmupSteps: 1, typo: 1 })],
  ['a scheduler state dict', () => new StepLR(null, { stepSize: 1 }).loadStateDict({ lastStep: 0, typo: 1 })],
  ['clipGradNorm options', () => clipGradNormSync([ones([2])], 1, { typo: true })],
  ['checkpoint contents', () => saveCheckpoint(path.join(os.tmpdir(), 'rnnkit-never-written'), { params: {}, typo: 1 })],
  ['loadCheckpoint options', () => loadCheckpoint(os.tmpdir(), { typo: 1 })],
  ['step-net state options', () => new StepNetBuilder().state('h', 2, { typo: 1 })],
  ['step-net link options', () => new StepNetBuilder().link('a', 'b', { typo: 1 })],
  ['step-net op arguments', () => new StepNetBuilder().op('add', ['y'], ['a', 'b'], { typo: 1 })],
  ['step-net gruUnit options', () => new StepNetBuilder().gruUnit('h', 'xg', 'hg', 'hp', { typo: 1 })],
  ['step-net spec', () => new RecurrentNetwork({ ...lstmNet().toSpec(), typo: [] })],
  ['a step-net spec entry', () => {
    const spec = lstmNet().toSpec();
    new RecurrentNetwork({ ...spec, inputs: [{ name: 'x', size: 2, typo: 1 }] });
  }],
  ['step-net forward options', () => lstmNet().build().forwardSync({ x: ones([1, 1, 2]) }, { typo: 1 })],
  ['step-net backward options', () => {
    const net = lstmNet().build();
    net.backwardSync(net.forwardSync({ x: ones([1, 1, 2]) }).saved, {}, { typo: 1 });
  }],
  // the model layer and distributed training
  ['nn.Linear options', () => new rnnkit.nn.Linear({ inFeatures: 2, outFeatures: 2, typo: 1 })],
  ['nn.Embedding options', () => new rnnkit.nn.Embedding({ numEmbeddings: 2, embeddingDim: 2, typo: 1 })],
  ['nn.LSTM options', () => new rnnkit.nn.LSTM({ inputSize: 2, hiddenSize: 2, typo: 1 })],
  ['nn.GRU options', () => new rnnkit.nn.GRU({ inputSize: 2, hiddenSize: 2, typo: 1 })],
  ['nn.RNN options', () => new rnnkit.nn.RNN({ inputSize: 2, hiddenSize: 2, typo: 1 })],
  ['nn recurrent state', () => new rnnkit.nn.GRU({ inputSize: 2, hiddenSize: 2 }).forwardSync(zeros([1, 1, 2]), { typo: 1 })],
  ['nn.Dropout options', () => new rnnkit.nn.Dropout({ p: 0.1, typo: 1 })],
  ['nn.RMSNorm options', () => new rnnkit.nn.RMSNorm({ normalizedShape: 2, typo: 1 })],
  ['Module.loadStateDict options', () => { const m = new rnnkit.nn.Linear({ inFeatures: 1, outFeatures: 1 }); m.loadStateDict(m.stateDict(), { typo: 1 }); }],
  ['Module.zeroGrad options', () => new rnnkit.nn.Linear({ inFeatures: 1, outFeatures: 1 }).zeroGrad({ typo: 1 })],
  ['nn.crossEntropy options', () => rnnkit.nn.crossEntropySync(ones([1, 2]), Int32Array.from([0]), { typo: 1 })],
  ['nn.mseLoss options', () => rnnkit.nn.mseLossSync(ones([2]), ones([2]), { typo: 1 })],
  ['nn.sum options', () => rnnkit.nn.sumSync(ones([2]), { typo: 1 })],
  ['backward options', () => {
    const x = ones([2]);
    x.requiresGrad = true;
    rnnkit.nn.sumSync(x).backwardSync({ typo: 1 });
  }],
  ['initProcessGroup options', () => rnnkit.distributed.initProcessGroupSync({ worldSize: 1, typo: 1 })],
  ['DistributedSampler options', () => new rnnkit.distributed.DistributedSampler(4, { numReplicas: 1, rank: 0, typo: 1 })],
];

/** A world of one process over gloo, when that backend is built (null otherwise). */
function worldOfOne() {
  const gloo = rnnkit.distributed.backends().find((b) => b.name === 'gloo');
  return gloo && gloo.available ? rnnkit.distributed.initProcessGroupSync({ backend: 'gloo', worldSize: 1, rank: 0 }) : null;
}

describe('options: unknown keys are refused in the options of a process group', function () {
  let group = null;
  before(function () {
    group = worldOfOne();
    if (!group) this.skip();
  });
  after(() => group && group.destroySync());

  for (const [what, call] of [
    ['allReduce options', (g) => g.allReduceSync(ones([2]), { typo: 1 })],
    ['broadcast options', (g) => g.broadcastSync(ones([2]), { typo: 1 })],
    ['DistributedDataParallel options', (g) => new rnnkit.nn.DistributedDataParallel(new rnnkit.nn.Linear({ inFeatures: 1, outFeatures: 1 }), { processGroup: g, typo: 1 })],
  ]) {
    it(what, function () {
      const err = expectCode(() => call(group), 'ERR_RNNKIT_ARG');
      expect(err.message).to.contain('typo').and.to.match(/allowed: /);
    });
  }
});

describe('options: unknown keys are refused everywhere', function () {
  for (const [what, call] of calls) {
    it(what, function () {
      const err = expectCode(call, 'ERR_RNNKIT_ARG');
      expect(err.message).to.contain('typo');
      expect(err.message).to.match(/allowed: /);
    });
  }

  it('tbptt options (async)', async function () {
    const err = await expectReject(tbptt({ typo: 1 }), 'ERR_RNNKIT_ARG');
    expect(err.message).to.match(/typo.*allowed: /);
  });

  it('async entry points read their options before any work', async function () {
    await expectReject(matmul(ones([2, 2]), ones([2, 2]), { transa: true }), 'ERR_RNNKIT_ARG');
    await expectReject(rmsNorm(ones([1, 2]), ones([2]), null, { epsilon: 1 }), 'ERR_RNNKIT_ARG');
    await expectReject(new Recurrent(LSTM).forward(zeros([1, 1, 2]), { seq_lengths: null }), 'ERR_RNNKIT_ARG');
  });

  it('an unknown key is refused even when its value is undefined', function () {
    expectCode(() => new Recurrent({ ...LSTM, hidden_size: undefined }), 'ERR_RNNKIT_ARG');
  });
});

describe('options: values of the wrong type', function () {
  const bad = [
    ['a non-object options', () => matmulSync(ones([2, 2]), ones([2, 2]), 'transA')],
    ['null options', () => zeros([2], null)],
    ['an array as options', () => new Linear([2, 2])],
    ['a non-boolean matmul flag', () => matmulSync(ones([2, 2]), ones([2, 2]), { transA: 1 })],
    ['a string eps', () => new RMSNorm({ size: 2, eps: '1e-3' })],
    ['an unknown reduction', () => mseLossSync(ones([2]), ones([2]), { reduction: 'avg' })],
    ['a fractional inFeatures', () => new Linear({ inFeatures: 1.5, outFeatures: 2 })],
    ['a fractional Linear seed', () => new Linear({ inFeatures: 1, outFeatures: 2, seed: 0.5 })],
    ['a negative learning rate', () => new SGD([ones([2])], { lr: -1 })],
    ['a NaN learning rate', () => new Adam([ones([2])], { lr: NaN })],
    ['numLayers far beyond the limit', () => new Recurrent({ ...LSTM, numLayers: 2 ** 31 })],
    ['an unknown step-net executor', () => lstmNet().build().forwardSync({ x: ones([1, 1, 2]) }, { executor: 'fast' })],
    ['a non-function tbptt head', () => tbptt({ model: new Recurrent(LSTM), length: 1, segmentLength: 1, input: zeros([1, 1, 2]), head: 1 })],
    ['a startFactor above 1', () => new LinearWarmup(null, { warmupSteps: 1, startFactor: 2 })],
  ];
  for (const [what, call] of bad) {
    it(what, async function () {
      let result;
      try {
        result = call();
      } catch (err) {
        expect(err.name).to.equal('RnnkitError');
        expect(err.code).to.equal('ERR_RNNKIT_ARG');
        return;
      }
      await expectReject(Promise.resolve(result), 'ERR_RNNKIT_ARG');
    });
  }

  it('a misspelled RMSNorm eps no longer leaves eps at its default', function () {
    expectCode(() => new RMSNorm({ size: 4, epsilon: 1e-3 }), 'ERR_RNNKIT_ARG');
    expect(new RMSNorm({ size: 4, eps: 1e-3 }).eps).to.equal(1e-3);
  });

  it('loadCheckpoint of a folder without a checkpoint is ERR_RNNKIT_ARG', function () {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-opts-'));
    try {
      expectCode(() => loadCheckpoint(dir), 'ERR_RNNKIT_ARG');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// Every class the public entry point exports, each with the entry of `calls` (or of the process-group
// suite above) that passes its constructor a misspelled key, or the reason it takes no options
// object. A new exported class fails this test until it is placed here.
const CONSTRUCTOR_SWEEP = {
  Recurrent: 'Recurrent options',
  RMSNorm: 'RMSNorm options (epsilon for eps)',
  Linear: 'Linear options (bais for bias)',
  SGD: 'SGD options',
  Adam: 'Adam options',
  AdamW: 'AdamW options',
  Adagrad: 'Adagrad options',
  RMSprop: 'RMSprop options',
  StepLR: 'StepLR options',
  CosineAnnealingLR: 'CosineAnnealingLR options',
  LinearWarmup: 'LinearWarmup options',
  RecurrentNetwork: 'step-net spec',
  'nn.Linear': 'nn.Linear options',
  'nn.Embedding': 'nn.Embedding options',
  'nn.LSTM': 'nn.LSTM options',
  'nn.GRU': 'nn.GRU options',
  'nn.RNN': 'nn.RNN options',
  'nn.Dropout': 'nn.Dropout options',
  'nn.RMSNorm': 'nn.RMSNorm options',
  'distributed.DistributedSampler': 'DistributedSampler options',
  'nn.DistributedDataParallel': { group: 'DistributedDataParallel options' },
  'distributed.DistributedDataParallel': { group: 'DistributedDataParallel options', same: 'nn.DistributedDataParallel' },
  StepNetBuilder: { none: 'takes no arguments; its methods options are in `calls`' },
  'nn.Sequential': { none: 'takes modules, not options; an options object is refused as "not a Module" (checked below)' },
  'nn.Module': { none: 'the base class; takes no arguments' },
  'nn.RNNBase': { none: 'abstract: its constructor is protected and LSTM/GRU/RNN pass their options through it' },
  Optimizer: { none: 'abstract: constructed through SGD/Adam/AdamW/Adagrad/RMSprop' },
  LRScheduler: { none: 'abstract: constructed through StepLR/CosineAnnealingLR/LinearWarmup' },
  Rng: { none: 'takes one seed number' },
  RnnkitError: { none: 'mirrors Error(message, { cause }): an error constructor must not throw' },
  Tensor: { none: 'made by tensor()/zeros()/...; the constructor refuses callers without the private token' },
  IndexTensor: { none: 'made by indexTensor(); the constructor refuses callers without the private token' },
  RecurrentSaved: { none: 'made by Recurrent.forward; private token' },
  StepNetSaved: { none: 'made by RecurrentNetwork.forward; private token' },
  'distributed.ProcessGroup': { none: 'made by initProcessGroup; private token' },
};

describe('options: the sweep covers every public constructor', function () {
  it('every exported class is placed in the sweep, and each named call exists', function () {
    const found = [];
    const walk = (obj, prefix) => {
      for (const key of Object.keys(obj)) {
        const v = obj[key];
        if (typeof v === 'function' && /^[A-Z]/.test(key)) found.push(prefix + key);
        else if (v && typeof v === 'object' && !ArrayBuffer.isView(v) && prefix === '') walk(v, `${key}.`);
      }
    };
    walk(rnnkit, '');
    const names = new Set(calls.map(([what]) => what));
    for (const cls of found) {
      const entry = CONSTRUCTOR_SWEEP[cls];
      expect(entry, `${cls} is exported but not in CONSTRUCTOR_SWEEP`).to.not.equal(undefined);
      if (typeof entry === 'string') expect(names.has(entry), `${cls}: no call named '${entry}'`).to.equal(true);
    }
    for (const cls of Object.keys(CONSTRUCTOR_SWEEP)) expect(found, `${cls} is in the sweep but not exported`).to.include(cls);
    expect(rnnkit.distributed.DistributedDataParallel).to.equal(rnnkit.nn.DistributedDataParallel);
  });

  it('nn.Sequential refuses an options object', function () {
    expectCode(() => new rnnkit.nn.Sequential({ typo: 1 }), 'ERR_RNNKIT_ARG');
  });

  it('the private-token constructors refuse a caller', function () {
    expectCode(() => new rnnkit.Tensor(Symbol('x'), [1], 'cpu', null), 'ERR_RNNKIT_ARG');
    expectCode(() => new rnnkit.IndexTensor(Symbol('x'), [1], 'cpu', null, 0, null, false), 'ERR_RNNKIT_ARG');
  });
});
