'use strict';
// lib/recurrent-params.ts through its compiled JavaScript: the packed layout against the float64
// reference's independent offsets, initialization, and the PyTorch / ONNX / Keras records.
const { expect } = require('chai');
const params = require('../dist/recurrent-params.js');
const ref = require('./reference/recurrent');
const { makeRandom, freshSeed } = require('./reference/random');

const runSeed = freshSeed();
const rng = makeRandom(runSeed);

afterEach(function printSeed() {
  if (this.currentTest.state === 'failed') {
    console.log(`    reproduce with RNNKIT_TEST_SEED=${runSeed}`);
  }
});

const KINDS = ['w_ih', 'w_hh', 'b_ih', 'b_hh', 'w_proj', 'w_peephole'];
const GATES = { lstm: ['i', 'f', 'g', 'o'], gru: ['r', 'z', 'n'], rnn_tanh: [], rnn_relu: [] };

function layoutConfigs() {
  const configs = [];
  for (const mode of ['lstm', 'gru', 'rnn_tanh', 'rnn_relu']) {
    const extras = mode === 'lstm'
      ? [{}, { projSize: 2 }, { peepholes: true }, { projSize: 3, peepholes: true }]
      : [{}];
    for (const extra of extras) {
      for (const numLayers of [1, 3]) {
        for (const bidirectional of [false, true]) {
          for (const inputMode of ['linear', 'skip']) {
            const hiddenSize = 4;
            const inputSize = inputMode === 'skip' ? hiddenSize : 5;
            configs.push({ mode, inputSize, hiddenSize, numLayers, bidirectional, inputMode, ...extra });
          }
        }
      }
    }
  }
  return configs;
}

function expectCode(fn, code, pattern) {
  let caught = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught, 'expected a throw').to.be.an('error');
  expect(caught.name).to.equal('RnnkitError');
  expect(caught.code, caught.message).to.equal(code);
  if (pattern) expect(caught.message).to.match(pattern);
}

describe('recurrent-params: layout', function () {
  it('agrees with the reference offsets for every mode and option', function () {
    for (const cfg of layoutConfigs()) {
      expect(params.weightsSize(cfg)).to.equal(ref.weightsSize(cfg));
      const D = cfg.bidirectional ? 2 : 1;
      for (const slot of ref.paramOffsets(cfg)) {
        for (const kind of KINDS) {
          const selector = { layer: slot.layer, direction: slot.direction, kind };
          if (slot[kind]) {
            expect(params.paramSlot(cfg, selector), `${JSON.stringify(cfg)} ${kind}`).to.deep.equal(slot[kind]);
          } else {
            expectCode(() => params.paramSlot(cfg, selector), 'ERR_RNNKIT_ARG');
          }
        }
        expect(slot.layer * D + slot.direction).to.be.below(cfg.numLayers * D);
      }
    }
  });

  it('selects gate rows in the order i f g o (LSTM), r z n (GRU), i f o (peepholes)', function () {
    const cfg = { mode: 'lstm', inputSize: 5, hiddenSize: 4, numLayers: 2, bidirectional: true, peepholes: true };
    const whole = params.paramSlot(cfg, { layer: 1, direction: 1, kind: 'w_ih' });
    GATES.lstm.forEach((gate, k) => {
      expect(params.paramSlot(cfg, { layer: 1, direction: 1, kind: 'w_ih', gate }))
        .to.deep.equal({ offset: whole.offset + k * 4 * 8, rows: 4, cols: 8 });
      const bias = params.paramSlot(cfg, { layer: 1, direction: 1, kind: 'b_hh' });
      expect(params.paramSlot(cfg, { layer: 1, direction: 1, kind: 'b_hh', gate }))
        .to.deep.equal({ offset: bias.offset + k * 4, rows: 4, cols: 1 });
    });
    const peep = params.paramSlot(cfg, { layer: 0, direction: 0, kind: 'w_peephole' });
    ['i', 'f', 'o'].forEach((gate, k) => {
      expect(params.paramSlot(cfg, { layer: 0, direction: 0, kind: 'w_peephole', gate }))
        .to.deep.equal({ offset: peep.offset + k * 4, rows: 4, cols: 1 });
    });
    const gru = { mode: 'gru', inputSize: 3, hiddenSize: 2 };
    expect(params.paramSlot(gru, { layer: 0, direction: 0, kind: 'w_hh', gate: 'n' }))
      .to.deep.equal({ offset: 18 + 2 * 2 * 2, rows: 2, cols: 2 });
  });

  it('rejects bad selectors and configurations with ERR_RNNKIT_ARG', function () {
    const cfg = { mode: 'lstm', inputSize: 3, hiddenSize: 2, projSize: 1 };
    const bad = [
      { layer: 1, direction: 0, kind: 'w_ih' },
      { layer: 0, direction: 1, kind: 'w_ih' },
      { layer: -1, direction: 0, kind: 'w_ih' },
      { layer: 0.5, direction: 0, kind: 'w_ih' },
      { layer: 0, direction: 0, kind: 'w_xx' },
      { layer: 0, direction: 0, kind: 'w_ih', gate: 'r' },
      { layer: 0, direction: 0, kind: 'w_proj', gate: 'i' },
      { layer: 0, direction: 0, kind: 'w_peephole' },
    ];
    for (const selector of bad) expectCode(() => params.paramSlot(cfg, selector), 'ERR_RNNKIT_ARG');
    expectCode(() => params.paramSlot({ mode: 'rnn_tanh', inputSize: 1, hiddenSize: 1 },
      { layer: 0, direction: 0, kind: 'w_hh', gate: 'i' }), 'ERR_RNNKIT_ARG');
    const badConfigs = [
      { mode: 'lstmx', inputSize: 2, hiddenSize: 2 },
      { mode: 'lstm', inputSize: 0, hiddenSize: 2 },
      { mode: 'lstm', inputSize: 2, hiddenSize: 2.5 },
      { mode: 'lstm', inputSize: 2, hiddenSize: 2, numLayers: 0 },
      { mode: 'lstm', inputSize: 2, hiddenSize: 2, projSize: -1 },
      { mode: 'lstm', inputSize: 3, hiddenSize: 2, inputMode: 'skip' },
      { mode: 'lstm', inputSize: 2, hiddenSize: 2, inputMode: 'dense' },
      { mode: 'gru', inputSize: 2, hiddenSize: 2, projSize: 1 },
      { mode: 'rnn_relu', inputSize: 2, hiddenSize: 2, peepholes: true },
    ];
    for (const bc of badConfigs) expectCode(() => params.weightsSize(bc), 'ERR_RNNKIT_ARG');
  });
});

describe('recurrent-params: initWeights', function () {
  it('draws U(-1/sqrt(H), 1/sqrt(H)) reproducibly from the seed', function () {
    const cfg = { mode: 'lstm', inputSize: 7, hiddenSize: 16, numLayers: 2, bidirectional: true };
    const seed = rng.int(0, 2 ** 31);
    const w = params.initWeights(cfg, seed);
    expect(w).to.be.instanceOf(Float32Array);
    expect(w.length).to.equal(params.weightsSize(cfg));
    const bound = 1 / Math.sqrt(16);
    let sum = 0;
    let sumSq = 0;
    for (const v of w) {
      expect(Math.abs(v)).to.be.at.most(bound);
      sum += v;
      sumSq += v * v;
    }
    const n = w.length;
    // Mean 0 and variance bound²/3 of the uniform law, within a few standard errors.
    expect(Math.abs(sum / n)).to.be.below(5 * bound / Math.sqrt(3 * n));
    expect(sumSq / n / (bound * bound / 3)).to.be.within(0.95, 1.05);
    expect(params.initWeights(cfg, seed)).to.deep.equal(w);
    expect(params.initWeights(cfg, seed + 1)).to.not.deep.equal(w);
    expect(params.initWeights(cfg, seed + 2 ** 32)).to.not.deep.equal(w);
    expect(params.initWeights(cfg, 1)).to.not.deep.equal(params.initWeights(cfg, 2 ** 32));
  });

  it('rejects seeds that are not non-negative safe integers', function () {
    const cfg = { mode: 'gru', inputSize: 2, hiddenSize: 2 };
    for (const seed of [-1, 1.5, NaN, 2 ** 60, '3']) {
      expectCode(() => params.initWeights(cfg, seed), 'ERR_RNNKIT_ARG');
    }
  });
});

// Configurations each format can represent.
function formatConfigs(format) {
  return layoutConfigs().flatMap((cfg) => [cfg, { ...cfg, linearBeforeReset: false }])
    .filter((cfg) => cfg.mode === 'gru' || cfg.linearBeforeReset === undefined)
    .filter((cfg) => {
      if (cfg.inputMode === 'skip') return false;
      if (format === 'pytorch') return !cfg.peepholes && cfg.linearBeforeReset !== false;
      if (format === 'onnx') return !cfg.projSize;
      return !cfg.projSize && !cfg.peepholes;
    });
}

// Keras keeps one bias (b_ih + b_hh) except for the reset_after GRU.
const kerasMergesBiases = (cfg) => cfg.mode !== 'gru' || cfg.linearBeforeReset === false;

describe('recurrent-params: interop round trips', function () {
  for (const format of ['pytorch', 'onnx', 'keras']) {
    it(`${format}: import(export(w)) restores w for every representable configuration`, function () {
      const configs = formatConfigs(format);
      expect(configs.length).to.be.above(10);
      for (const cfg of configs) {
        const w = params.initWeights(cfg, rng.int(0, 2 ** 31));
        const record = params.exportWeights(cfg, w, format);
        const shapes = params.recordShapes(cfg, format);
        expect(Object.keys(record)).to.deep.equal(Object.keys(shapes));
        for (const [name, shape] of Object.entries(shapes)) {
          expect(record[name].length, name).to.equal(shape.reduce((a, b) => a * b, 1));
        }
        const back = params.importWeights(cfg, new Float32Array(w.length).fill(NaN), format, record);
        if (format === 'keras' && kerasMergesBiases(cfg)) {
          expect(params.exportWeights(cfg, back, format)).to.deep.equal(record);
          for (const slot of ref.paramOffsets(cfg)) {
            const bih = slot.b_ih.offset;
            const bhh = slot.b_hh.offset;
            for (let k = 0; k < slot.b_ih.rows; k++) {
              expect(back[bih + k]).to.equal(Math.fround(w[bih + k] + w[bhh + k]));
              expect(back[bhh + k]).to.equal(0);
            }
            const weightsOnly = (a) => Array.from(a.subarray(slot.w_ih.offset, bih));
            expect(weightsOnly(back)).to.deep.equal(weightsOnly(w));
          }
        } else {
          expect(back).to.deep.equal(w);
        }
      }
    });
  }
});

// Weights where every row of a gate block holds a code naming its kind, gate and row:
// 1000·(kind + 1) + 100·gate + row within the gate.
function codedWeights(cfg) {
  const w = new Float32Array(params.weightsSize(cfg));
  const D = cfg.bidirectional ? 2 : 1;
  const gateLists = { w_ih: GATES[cfg.mode], w_hh: GATES[cfg.mode], b_ih: GATES[cfg.mode],
    b_hh: GATES[cfg.mode], w_peephole: ['i', 'f', 'o'] };
  for (let layer = 0; layer < (cfg.numLayers ?? 1); layer++) {
    for (let direction = 0; direction < D; direction++) {
      Object.entries(gateLists).forEach(([kind, gates], kindIndex) => {
        gates.forEach((gate, g) => {
          let slot;
          try {
            slot = params.paramSlot(cfg, { layer, direction, kind, gate });
          } catch {
            return;
          }
          for (let row = 0; row < slot.rows; row++) {
            const code = 1000 * (kindIndex + 1) + 100 * g + row;
            w.fill(code, slot.offset + row * slot.cols, slot.offset + (row + 1) * slot.cols);
          }
        });
      });
    }
  }
  return w;
}

const code = (kind, gate, row) => 1000 * (['w_ih', 'w_hh', 'b_ih', 'b_hh', 'w_peephole'].indexOf(kind) + 1)
  + 100 * gate + row;

describe('recurrent-params: formats', function () {
  it('pytorch: state_dict names with _reverse, gate order unchanged', function () {
    const cfg = { mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, projSize: 2 };
    const shapes = params.recordShapes(cfg, 'pytorch');
    expect(shapes).to.deep.equal({
      weight_ih_l0: [16, 3], weight_hh_l0: [16, 2], bias_ih_l0: [16], bias_hh_l0: [16], weight_hr_l0: [2, 4],
      weight_ih_l0_reverse: [16, 3], weight_hh_l0_reverse: [16, 2], bias_ih_l0_reverse: [16],
      bias_hh_l0_reverse: [16], weight_hr_l0_reverse: [2, 4],
      weight_ih_l1: [16, 4], weight_hh_l1: [16, 2], bias_ih_l1: [16], bias_hh_l1: [16], weight_hr_l1: [2, 4],
      weight_ih_l1_reverse: [16, 4], weight_hh_l1_reverse: [16, 2], bias_ih_l1_reverse: [16],
      bias_hh_l1_reverse: [16], weight_hr_l1_reverse: [2, 4],
    });
    const w = codedWeights(cfg);
    const record = params.exportWeights(cfg, w, 'pytorch');
    const slot = params.paramSlot(cfg, { layer: 1, direction: 1, kind: 'b_hh' });
    expect(Array.from(record.bias_hh_l1_reverse)).to.deep.equal(Array.from(w.subarray(slot.offset, slot.offset + 16)));
    expect(record.weight_ih_l0[(2 * 4 + 1) * 3]).to.equal(code('w_ih', 2, 1));
  });

  it('onnx: W R B P per layer, gates i o f c / z r h, peepholes i o f, directions stacked', function () {
    const H = 3;
    const lstm = { mode: 'lstm', inputSize: 2, hiddenSize: H, bidirectional: true, peepholes: true };
    expect(params.recordShapes(lstm, 'onnx')).to.deep.equal({
      W: [2, 12, 2], R: [2, 12, 3], B: [2, 24], P: [2, 9],
    });
    const rec = params.exportWeights(lstm, codedWeights(lstm), 'onnx');
    // ONNX gate position p holds our gate: i o f c = ours 0 3 1 2.
    [0, 3, 1, 2].forEach((ours, p) => {
      for (const d of [0, 1]) {
        expect(rec.W[((d * 12) + p * H + 1) * 2 + 1]).to.equal(code('w_ih', ours, 1));
        expect(rec.R[((d * 12) + p * H + 2) * 3]).to.equal(code('w_hh', ours, 2));
        expect(rec.B[d * 24 + p * H]).to.equal(code('b_ih', ours, 0));
        expect(rec.B[d * 24 + 12 + p * H + 2]).to.equal(code('b_hh', ours, 2));
      }
    });
    // P is i o f; our peephole block is i f o.
    [0, 2, 1].forEach((ours, p) => expect(rec.P[9 + p * H + 1]).to.equal(code('w_peephole', ours, 1)));

    const gru = { mode: 'gru', inputSize: 2, hiddenSize: H, numLayers: 2 };
    expect(Object.keys(params.recordShapes(gru, 'onnx'))).to.deep.equal(['W_l0', 'R_l0', 'B_l0', 'W_l1', 'R_l1', 'B_l1']);
    const g = params.exportWeights(gru, codedWeights(gru), 'onnx');
    [1, 0, 2].forEach((ours, p) => {
      expect(g.W_l1[(p * H) * 3]).to.equal(code('w_ih', ours, 0));
      expect(g.B_l0[9 + p * H + 1]).to.equal(code('b_hh', ours, 1));
    });
  });

  it('keras: transposed kernels, gates i f c o / z r h, merged or stacked biases', function () {
    const H = 2;
    const I = 3;
    const lstm = { mode: 'lstm', inputSize: I, hiddenSize: H, bidirectional: true };
    expect(params.recordShapes(lstm, 'keras')).to.deep.equal({
      'layer0_fw/kernel': [3, 8], 'layer0_fw/recurrent_kernel': [2, 8], 'layer0_fw/bias': [8],
      'layer0_bw/kernel': [3, 8], 'layer0_bw/recurrent_kernel': [2, 8], 'layer0_bw/bias': [8],
    });
    const w = codedWeights(lstm);
    // Mark one element to check the transposition: our w_ih row (gate g, j = 1), column i = 2.
    const gSlot = params.paramSlot(lstm, { layer: 0, direction: 1, kind: 'w_ih', gate: 'g' });
    w[gSlot.offset + 1 * I + 2] = -7;
    const rec = params.exportWeights(lstm, w, 'keras');
    // Keras c (position 2) is our g; kernel[i, p·H + j].
    expect(rec['layer0_bw/kernel'][2 * 8 + 2 * H + 1]).to.equal(-7);
    [0, 1, 2, 3].forEach((ours, p) => {
      expect(rec['layer0_fw/kernel'][0 * 8 + p * H + 1]).to.equal(code('w_ih', ours, 1));
      expect(rec['layer0_fw/recurrent_kernel'][1 * 8 + p * H]).to.equal(code('w_hh', ours, 0));
      expect(rec['layer0_fw/bias'][p * H + 1]).to.equal(code('b_ih', ours, 1) + code('b_hh', ours, 1));
    });

    const gru = { mode: 'gru', inputSize: I, hiddenSize: H };
    expect(params.recordShapes(gru, 'keras')['layer0_fw/bias']).to.deep.equal([2, 6]);
    const g = params.exportWeights(gru, codedWeights(gru), 'keras');
    [1, 0, 2].forEach((ours, p) => {
      expect(g['layer0_fw/kernel'][1 * 6 + p * H]).to.equal(code('w_ih', ours, 0));
      expect(g['layer0_fw/bias'][p * H + 1]).to.equal(code('b_ih', ours, 1));
      expect(g['layer0_fw/bias'][6 + p * H + 1]).to.equal(code('b_hh', ours, 1));
    });
    const gruAfter = { ...gru, linearBeforeReset: false };
    expect(params.recordShapes(gruAfter, 'keras')['layer0_fw/bias']).to.deep.equal([6]);
  });
});

describe('recurrent-params: interop errors', function () {
  const cfg = { mode: 'gru', inputSize: 3, hiddenSize: 2, numLayers: 2 };

  it('refuses configurations a format cannot represent (ERR_RNNKIT_ARG)', function () {
    const cases = [
      ['pytorch', { mode: 'lstm', inputSize: 2, hiddenSize: 2, peepholes: true }, /peephole/],
      ['pytorch', { mode: 'gru', inputSize: 2, hiddenSize: 2, linearBeforeReset: false }, /linearBeforeReset/],
      ['pytorch', { mode: 'gru', inputSize: 2, hiddenSize: 2, inputMode: 'skip' }, /skip/],
      ['onnx', { mode: 'lstm', inputSize: 2, hiddenSize: 2, inputMode: 'skip' }, /skip/],
      ['onnx', { mode: 'lstm', inputSize: 2, hiddenSize: 3, projSize: 2 }, /projection/],
      ['keras', { mode: 'lstm', inputSize: 2, hiddenSize: 3, projSize: 2 }, /projection/],
      ['keras', { mode: 'lstm', inputSize: 2, hiddenSize: 3, peepholes: true }, /peephole/],
      ['keras', { mode: 'rnn_tanh', inputSize: 2, hiddenSize: 2, inputMode: 'skip' }, /skip/],
    ];
    for (const [format, c, pattern] of cases) {
      const w = new Float32Array(params.weightsSize(c));
      expectCode(() => params.exportWeights(c, w, format), 'ERR_RNNKIT_ARG', pattern);
      expectCode(() => params.importWeights(c, w, format, {}), 'ERR_RNNKIT_ARG', pattern);
    }
    expectCode(() => params.recordShapes(cfg, 'tflite'), 'ERR_RNNKIT_ARG', /format/);
  });

  it('checks names, sizes and types of a record and writes nothing when one is bad', function () {
    const w = params.initWeights(cfg, rng.int(0, 2 ** 31));
    const good = params.exportWeights(cfg, w, 'onnx');
    const target = new Float32Array(w.length).fill(5);
    const { W_l1: dropped, ...missing } = good;
    expect(dropped).to.be.instanceOf(Float32Array);
    expectCode(() => params.importWeights(cfg, target, 'onnx', missing), 'ERR_RNNKIT_ARG', /W_l1/);
    expectCode(() => params.importWeights(cfg, target, 'onnx', { ...good, P_l0: new Float32Array(12) }),
      'ERR_RNNKIT_ARG', /P_l0/);
    expectCode(() => params.importWeights(cfg, target, 'onnx', { ...good, R_l0: new Float32Array(11) }),
      'ERR_RNNKIT_SHAPE', /R_l0/);
    expectCode(() => params.importWeights(cfg, target, 'onnx', { ...good, B_l1: Array.from(good.B_l1) }),
      'ERR_RNNKIT_DTYPE', /B_l1/);
    expectCode(() => params.importWeights(cfg, target, 'onnx', null), 'ERR_RNNKIT_ARG');
    expect(target.every((v) => v === 5)).to.equal(true);
    expectCode(() => params.importWeights(cfg, target, 'pytorch', good), 'ERR_RNNKIT_ARG', /unexpected/);
  });

  it('checks the packed weights given to export and import', function () {
    const size = params.weightsSize(cfg);
    expectCode(() => params.exportWeights(cfg, new Float32Array(size + 1), 'keras'), 'ERR_RNNKIT_SHAPE');
    expectCode(() => params.exportWeights(cfg, new Float64Array(size), 'keras'), 'ERR_RNNKIT_DTYPE');
    const rec = params.exportWeights(cfg, new Float32Array(size), 'keras');
    expectCode(() => params.importWeights(cfg, new Float32Array(size - 1), 'keras', rec), 'ERR_RNNKIT_SHAPE');
  });
});
