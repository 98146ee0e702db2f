'use strict';
// Every bad input of the Recurrent op throws (or, async, rejects with) an RnnkitError with the
// right code, from lib's checks and from the binding's own checks, and no JavaScript value handed
// straight to the binding crashes the process.
const { Recurrent, RecurrentSaved } = require('../dist/recurrent');
const { native } = require('../dist/native');

const LSTM = { mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, seed: 1 };
const T = 5;
const B = 2;
const LD = 4;

function setup(cfg = LSTM) {
  const op = new Recurrent(cfg);
  const x = rnnkit.zeros([T, B, cfg.inputSize]);
  return { op, x };
}

describe('Recurrent errors: configuration', function () {
  const bad = [
    ['no options', undefined, 'ERR_RNNKIT_ARG'],
    ['unknown mode', { ...LSTM, mode: 'transformer' }, 'ERR_RNNKIT_ARG'],
    ['inputSize 0', { ...LSTM, inputSize: 0 }, 'ERR_RNNKIT_ARG'],
    ['fractional hiddenSize', { ...LSTM, hiddenSize: 2.5 }, 'ERR_RNNKIT_ARG'],
    ['string hiddenSize', { ...LSTM, hiddenSize: '4' }, 'ERR_RNNKIT_ARG'],
    ['numLayers 0', { ...LSTM, numLayers: 0 }, 'ERR_RNNKIT_ARG'],
    ['skip input with I != H', { ...LSTM, inputMode: 'skip' }, 'ERR_RNNKIT_ARG'],
    ['unknown inputMode', { ...LSTM, inputMode: 'dense' }, 'ERR_RNNKIT_ARG'],
    ['projSize on a GRU', { ...LSTM, mode: 'gru', projSize: 2 }, 'ERR_RNNKIT_ARG'],
    ['negative projSize', { ...LSTM, projSize: -1 }, 'ERR_RNNKIT_ARG'],
    ['peepholes on an RNN', { ...LSTM, mode: 'rnn_tanh', peepholes: true }, 'ERR_RNNKIT_ARG'],
    ['cellClip on a GRU', { ...LSTM, mode: 'gru', cellClip: 1 }, 'ERR_RNNKIT_ARG'],
    ['negative cellClip', { ...LSTM, cellClip: -1 }, 'ERR_RNNKIT_ARG'],
    ['NaN cellClip', { ...LSTM, cellClip: NaN }, 'ERR_RNNKIT_ARG'],
    ['dropout 1', { ...LSTM, dropout: 1 }, 'ERR_RNNKIT_ARG'],
    ['negative dropout', { ...LSTM, dropout: -0.1 }, 'ERR_RNNKIT_ARG'],
    ['NaN dropout', { ...LSTM, dropout: NaN }, 'ERR_RNNKIT_ARG'],
    ['dropout rounding to 1 in float32', { ...LSTM, dropout: 1 - 1e-9 }, 'ERR_RNNKIT_ARG'],
    ['string dropout', { ...LSTM, dropout: '0.1' }, 'ERR_RNNKIT_ARG'],
    ['non-boolean bidirectional', { ...LSTM, bidirectional: 'yes' }, 'ERR_RNNKIT_ARG'],
    ['non-boolean batchFirst', { ...LSTM, batchFirst: 1 }, 'ERR_RNNKIT_ARG'],
    ['misspelled option', { ...LSTM, hidden_size: 4 }, 'ERR_RNNKIT_ARG'],
    ['unknown device', { ...LSTM, device: 'tpu' }, 'ERR_RNNKIT_ARG'],
    ['negative seed', { ...LSTM, seed: -1 }, 'ERR_RNNKIT_ARG'],
    ['fractional seed', { ...LSTM, seed: 1.5 }, 'ERR_RNNKIT_ARG'],
    ['unknown algorithm', { ...LSTM, algorithm: 'fastest' }, 'ERR_RNNKIT_ARG'],
    ['numLayers beyond the kernels\' limit', { ...LSTM, numLayers: 2 ** 31 }, 'ERR_RNNKIT_ARG'],
  ];
  for (const [what, cfg, code] of bad) {
    it(`${what}: ${code}`, function () {
      expectCode(() => new Recurrent(cfg), code);
    });
  }

  it('a CUDA device without CUDA: ERR_RNNKIT_DEVICE', function () {
    if (cudaAvailable()) this.skip();
    expectCode(() => new Recurrent({ ...LSTM, device: 'cuda' }), 'ERR_RNNKIT_DEVICE');
  });
});

describe('Recurrent errors: forward', function () {
  const R = 4;
  const cases = [
    ['x not a tensor', (x) => [new Float32Array(x.size)], 'ERR_RNNKIT_ARG'],
    ['x of rank 2', () => [rnnkit.zeros([T * B, 3])], 'ERR_RNNKIT_SHAPE'],
    ['x with the wrong feature size', () => [rnnkit.zeros([T, B, 4])], 'ERR_RNNKIT_SHAPE'],
    ['hx of the wrong layer count', (x) => [x, { hx: rnnkit.zeros([2, B, R]) }], 'ERR_RNNKIT_SHAPE'],
    ['hx of the wrong batch', (x) => [x, { hx: rnnkit.zeros([LD, B + 1, R]) }], 'ERR_RNNKIT_SHAPE'],
    ['hx of the wrong size', (x) => [x, { hx: rnnkit.zeros([LD, B, R + 1]) }], 'ERR_RNNKIT_SHAPE'],
    ['hx of rank 2', (x) => [x, { hx: rnnkit.zeros([LD * B, R]) }], 'ERR_RNNKIT_SHAPE'],
    ['hx as a Float32Array', (x) => [x, { hx: new Float32Array(LD * B * R) }], 'ERR_RNNKIT_ARG'],
    ['cx of the wrong shape', (x) => [x, { cx: rnnkit.zeros([LD, B, 5]) }], 'ERR_RNNKIT_SHAPE'],
    ['seqLengths as a Float32Array', (x) => [x, { seqLengths: new Float32Array([1, 2]) }], 'ERR_RNNKIT_DTYPE'],
    ['seqLengths as an array', (x) => [x, { seqLengths: [1, 2] }], 'ERR_RNNKIT_DTYPE'],
    ['seqLengths of the wrong length', (x) => [x, { seqLengths: Int32Array.from([1, 2, 3]) }], 'ERR_RNNKIT_SHAPE'],
    ['a negative length', (x) => [x, { seqLengths: Int32Array.from([1, -1]) }], 'ERR_RNNKIT_ARG'],
    ['a length past T', (x) => [x, { seqLengths: Int32Array.from([T + 1, 1]) }], 'ERR_RNNKIT_ARG'],
    ['non-boolean training', (x) => [x, { training: 1 }], 'ERR_RNNKIT_ARG'],
    ['non-boolean dropout', (x) => [x, { dropout: 0.5 }], 'ERR_RNNKIT_ARG'],
    ['negative dropoutSeed', (x) => [x, { dropoutSeed: -3 }], 'ERR_RNNKIT_ARG'],
    ['misspelled option', (x) => [x, { seq_lengths: Int32Array.from([1, 1]) }], 'ERR_RNNKIT_ARG'],
    ['options not an object', (x) => [x, 'training'], 'ERR_RNNKIT_ARG'],
  ];
  for (const [what, args, code] of cases) {
    it(`${what}: ${code}, sync and async`, async function () {
      const { op, x } = setup();
      expectCode(() => op.forwardSync(...args(x)), code);
      await expectReject(op.forward(...args(x)), code);
    });
  }

  it('cx or dcy on a non-LSTM mode: ERR_RNNKIT_ARG', async function () {
    const { op, x } = setup({ ...LSTM, mode: 'gru' });
    expectCode(() => op.forwardSync(x, { cx: rnnkit.zeros([LD, B, 4]) }), 'ERR_RNNKIT_ARG');
    const f = op.forwardSync(x, { training: true });
    await expectReject(op.backward(f.saved, { dcy: rnnkit.zeros([LD, B, 4]) }), 'ERR_RNNKIT_ARG');
  });

  it('disposed x, hx, weights or op: ERR_RNNKIT_DISPOSED', async function () {
    const { op, x } = setup();
    const hx = rnnkit.zeros([LD, B, R]);
    hx.dispose();
    expectCode(() => op.forwardSync(x, { hx }), 'ERR_RNNKIT_DISPOSED');
    const gone = rnnkit.zeros([T, B, 3]);
    gone.dispose();
    await expectReject(op.forward(gone), 'ERR_RNNKIT_DISPOSED');
    op.weights.dispose();
    expectCode(() => op.forwardSync(x), 'ERR_RNNKIT_DISPOSED');
    const other = setup().op;
    other.dispose();
    other.dispose();
    expectCode(() => other.forwardSync(x), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => other.weights, 'ERR_RNNKIT_DISPOSED');
    expectCode(() => other.getParam({ layer: 0, direction: 0, kind: 'w_hh' }), 'ERR_RNNKIT_DISPOSED');
    expect(other.disposed).to.equal(true);
  });
});

describe('Recurrent errors: backward', function () {
  function trained(cfg = LSTM) {
    const { op, x } = setup(cfg);
    const f = op.forwardSync(x, { training: true });
    return { op, x, f };
  }

  it('a saved that is not from a training forward of this op: ERR_RNNKIT_ARG', async function () {
    const { op, x, f } = trained();
    const inference = op.forwardSync(x);
    expect(inference.saved).to.equal(null);
    expectCode(() => op.backwardSync(inference.saved, {}), 'ERR_RNNKIT_ARG');
    expectCode(() => op.backwardSync({}, {}), 'ERR_RNNKIT_ARG');
    expectCode(() => op.backwardSync(f, {}), 'ERR_RNNKIT_ARG');
    await expectReject(trained().op.backward(f.saved, {}), 'ERR_RNNKIT_ARG');
    expect(f.saved).to.be.instanceOf(RecurrentSaved);
  });

  it('a released saved or a disposed input of the forward: ERR_RNNKIT_DISPOSED', async function () {
    const { op, f } = trained();
    f.saved.release();
    expect(f.saved.released).to.equal(true);
    expectCode(() => op.backwardSync(f.saved, {}), 'ERR_RNNKIT_DISPOSED');
    const t = trained();
    t.x.dispose();
    await expectReject(t.op.backward(t.f.saved, {}), 'ERR_RNNKIT_DISPOSED');
  });

  it('weights changed by setParam or importWeights since the forward: ERR_RNNKIT_ARG', function () {
    const { op, f } = trained();
    op.setParam({ layer: 0, direction: 0, kind: 'b_hh' }, new Float32Array(16));
    expectCode(() => op.backwardSync(f.saved, {}), 'ERR_RNNKIT_ARG');
    const t = trained();
    t.op.importWeights('pytorch', t.op.exportWeights('pytorch'));
    expectCode(() => t.op.backwardSync(t.f.saved, {}), 'ERR_RNNKIT_ARG');
  });

  const cases = [
    ['dy of the wrong shape', () => ({ dy: rnnkit.zeros([T, B, 4]) }), 'ERR_RNNKIT_SHAPE'],
    ['dy in batch-first order', () => ({ dy: rnnkit.zeros([B, T, 8]) }), 'ERR_RNNKIT_SHAPE'],
    ['dhy of the wrong shape', () => ({ dhy: rnnkit.zeros([LD, B, 5]) }), 'ERR_RNNKIT_SHAPE'],
    ['dcy of the wrong shape', () => ({ dcy: rnnkit.zeros([2, B, 4]) }), 'ERR_RNNKIT_SHAPE'],
    ['dy not a tensor', () => ({ dy: new Float32Array(T * B * 8) }), 'ERR_RNNKIT_ARG'],
    ['dweights of the wrong size', () => ({ dweights: rnnkit.zeros([3]) }), 'ERR_RNNKIT_SHAPE'],
    ['accumulate without dweights', () => ({ accumulate: true }), 'ERR_RNNKIT_ARG'],
    ['non-boolean accumulate', () => ({ accumulate: 'yes', dweights: null }), 'ERR_RNNKIT_ARG'],
    ['misspelled option', () => ({ d_y: null }), 'ERR_RNNKIT_ARG'],
  ];
  for (const [what, options, code] of cases) {
    it(`${what}: ${code}, sync and async`, async function () {
      const { op, f } = trained();
      expectCode(() => op.backwardSync(f.saved, options()), code);
      await expectReject(op.backward(f.saved, options()), code);
    });
  }

  it('a disposed dy: ERR_RNNKIT_DISPOSED', function () {
    const { op, f } = trained();
    const dy = rnnkit.zeros(f.y.shape);
    dy.dispose();
    expectCode(() => op.backwardSync(f.saved, { dy }), 'ERR_RNNKIT_DISPOSED');
  });
});

describe('Recurrent errors: parameters and interop', function () {
  it('bad selectors: ERR_RNNKIT_ARG', function () {
    const { op } = setup({ ...LSTM, numLayers: 1, bidirectional: false });
    for (const sel of [null, 'w_hh', { layer: 1, direction: 0, kind: 'w_hh' }, { layer: 0, direction: 1, kind: 'w_hh' },
      { layer: 0, direction: 0, kind: 'w_xx' }, { layer: 0, direction: 0, kind: 'w_proj' },
      { layer: 0, direction: 0, kind: 'w_hh', gate: 'r' }, { layer: -1, direction: 0, kind: 'b_ih' },
      { layer: 0, direction: 0, kind: '__proto__' }, { layer: 0, direction: 0, kind: 'constructor' }, {}]) {
      expectCode(() => op.getParam(sel), 'ERR_RNNKIT_ARG');
      expectCode(() => op.setParam(sel, new Float32Array(16)), 'ERR_RNNKIT_ARG');
    }
  });

  it('setParam values of the wrong size or type', function () {
    const { op } = setup();
    const sel = { layer: 0, direction: 0, kind: 'b_ih', gate: 'f' };
    const before = op.weights.data.slice();
    expectCode(() => op.setParam(sel, new Float32Array(5)), 'ERR_RNNKIT_SHAPE');
    expectCode(() => op.setParam(sel, [1, 2, 3, 4]), 'ERR_RNNKIT_DTYPE');
    expectCode(() => op.setParam(sel, new Float64Array(4)), 'ERR_RNNKIT_DTYPE');
    const t = rnnkit.zeros([4]);
    t.dispose();
    expectCode(() => op.setParam(sel, t), 'ERR_RNNKIT_DISPOSED');
    expect(op.weights.data).to.deep.equal(before);
  });

  it('import / export errors leave the weights alone', function () {
    const { op } = setup();
    const before = op.weights.data.slice();
    const record = op.exportWeights('pytorch');
    expectCode(() => op.exportWeights('tflite'), 'ERR_RNNKIT_ARG');
    expectCode(() => op.importWeights('pytorch', null), 'ERR_RNNKIT_ARG');
    const { weight_ih_l0: dropped, ...missing } = record;
    expect(dropped).to.be.instanceOf(Float32Array);
    expectCode(() => op.importWeights('pytorch', missing), 'ERR_RNNKIT_ARG');
    expectCode(() => op.importWeights('pytorch', { ...record, weight_hh_l1: new Float32Array(3) }), 'ERR_RNNKIT_SHAPE');
    expectCode(() => op.importWeights('pytorch', { ...record, bias_ih_l0: [0] }), 'ERR_RNNKIT_DTYPE');
    expect(op.weights.data).to.deep.equal(before);
    const skip = new Recurrent({ mode: 'gru', inputSize: 4, hiddenSize: 4, inputMode: 'skip' });
    expectCode(() => skip.exportWeights('pytorch'), 'ERR_RNNKIT_ARG');
    const proj = new Recurrent({ mode: 'lstm', inputSize: 4, hiddenSize: 4, projSize: 2 });
    expectCode(() => proj.exportWeights('onnx'), 'ERR_RNNKIT_ARG');
  });
});

describe('Recurrent errors: the binding on its own', function () {
  const cfg = {
    mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true, skipInput: false, projSize: 0,
    cellClip: 0, peepholes: false, linearBeforeReset: true,
  };
  const savedSize = () => native().recurrentSavedSize(cfg, T, B);
  const wsize = () => native().recurrentWeightsSize(cfg);
  const fwdArgs = () => ({
    config: cfg, T, B, batchFirst: false, x: new Float32Array(T * B * 3), hx: null, cx: null, seqLengths: null,
    weights: new Float32Array(wsize()), dropout: 0, seed: 0, y: new Float32Array(T * B * 8),
    hy: new Float32Array(LD * B * 4), cy: new Float32Array(LD * B * 4), saved: new Float32Array(savedSize()), async: false,
  });
  const bwdArgs = () => ({
    config: cfg, T, B, batchFirst: false, x: new Float32Array(T * B * 3), hx: null, cx: null, seqLengths: null,
    weights: new Float32Array(wsize()), dropout: 0, seed: 0, y: new Float32Array(T * B * 8),
    saved: new Float32Array(savedSize()), dy: null, dhy: null, dcy: null, dx: new Float32Array(T * B * 3), dhx: null,
    dcx: null, dweights: new Float32Array(wsize()), accumulate: false, async: false,
  });

  it('valid raw calls succeed (so that the checks below test one bad value each)', function () {
    native().recurrentForward(fwdArgs());
    native().recurrentBackward(bwdArgs());
  });

  it('checks config fields, sizes, lengths and ranges with typed codes', async function () {
    const F = (patch) => {
      const a = fwdArgs();
      patch(a);
      return () => native().recurrentForward(a);
    };
    expectCode(F((a) => { a.config = { ...cfg, mode: 'x' }; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.config = { ...cfg, hiddenSize: undefined }; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.config = { ...cfg, peepholes: 1 }; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.config = { ...cfg, skipInput: true }; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.config = { ...cfg, cellClip: Infinity }; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.config = { ...cfg, hiddenSize: 2 ** 30 }; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.T = 2 ** 31; a.B = 2 ** 31; }), 'ERR_RNNKIT_SHAPE');
    expectCode(F((a) => { a.T = T + 1; }), 'ERR_RNNKIT_SHAPE');
    expectCode(F((a) => { a.x = new Float32Array(2); }), 'ERR_RNNKIT_SHAPE');
    expectCode(F((a) => { a.x = new Float64Array(T * B * 3); }), 'ERR_RNNKIT_DTYPE');
    expectCode(F((a) => { a.hx = new Float32Array(3); }), 'ERR_RNNKIT_SHAPE');
    expectCode(F((a) => { a.seqLengths = Int32Array.from([1, T + 1]); }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.seqLengths = Int32Array.from([-1, 2]); }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.seqLengths = Int32Array.from([1]); }), 'ERR_RNNKIT_SHAPE');
    expectCode(F((a) => { a.seqLengths = new Uint32Array(2); }), 'ERR_RNNKIT_DTYPE');
    expectCode(F((a) => { a.weights = new Float32Array(wsize() - 1); }), 'ERR_RNNKIT_SHAPE');
    expectCode(F((a) => { a.dropout = 1; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.dropout = NaN; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.seed = -1; }), 'ERR_RNNKIT_ARG');
    expectCode(F((a) => { a.y = new Float32Array(T * B * 8 - 1); }), 'ERR_RNNKIT_SHAPE');
    expectCode(F((a) => { a.saved = new Float32Array(savedSize() + 1); }), 'ERR_RNNKIT_SHAPE');
    expectCode(F((a) => { a.config = { ...cfg, mode: 'gru' }; a.weights = new Float32Array(native().recurrentWeightsSize(a.config));
      a.cy = null; a.saved = null; a.cx = new Float32Array(LD * B * 4); }),
      'ERR_RNNKIT_ARG');
    const a = fwdArgs();
    a.seqLengths = Int32Array.from([1, T + 1]);
    a.async = true;
    expectCode(() => native().recurrentForward(a), 'ERR_RNNKIT_ARG');
    const b = bwdArgs();
    b.saved = new Float32Array(3);
    expectCode(() => native().recurrentBackward(b), 'ERR_RNNKIT_SHAPE');
    const c = bwdArgs();
    c.dweights = new Float32Array(1);
    c.async = true;
    expectCode(() => native().recurrentBackward(c), 'ERR_RNNKIT_SHAPE');
    expectCode(() => native().recurrentSavedSize(cfg, -1, 2), 'ERR_RNNKIT_ARG');
    await native().recurrentForward({ ...fwdArgs(), async: true });
  });

  it('refuses a call that is not one object of known fields, naming the unknown field', function () {
    for (const fn of ['recurrentForward', 'recurrentBackward']) {
      for (const bad of [undefined, null, 1, 'x', [], () => 1]) expectCode(() => native()[fn](bad), 'ERR_RNNKIT_ARG');
      const args = fn === 'recurrentForward' ? fwdArgs() : bwdArgs();
      const err = expectCode(() => native()[fn]({ ...args, weigths: args.weights }), 'ERR_RNNKIT_ARG');
      expect(err.message).to.contain('weigths').and.contain('weights');
    }
    // A backward-only field is unknown to the forward, and the reverse.
    expectCode(() => native().recurrentForward({ ...fwdArgs(), accumulate: false }), 'ERR_RNNKIT_ARG');
    expectCode(() => native().recurrentBackward({ ...bwdArgs(), hy: null }), 'ERR_RNNKIT_ARG');
  });

  it('no JavaScript value in any argument position crashes the process', function () {
    const junk = [undefined, null, true, 0, -1, 1.5, NaN, 2 ** 53, 'lstm', {}, [], Symbol('s'), () => 1,
      new Float32Array(0), new Float32Array(1), new Float32Array(10000), new Int32Array(2), new Float64Array(40),
      { mode: 'lstm' }, new ArrayBuffer(16)];
    let threw = 0;
    let ran = 0;
    for (const [fn, args] of [['recurrentForward', fwdArgs], ['recurrentBackward', bwdArgs]]) {
      const names = Object.keys(args());
      for (let i = 0; i < names.length; i++) {
        for (const v of junk) {
          const a = args();
          a[names[i]] = v;
          try {
            native()[fn](a);
            ran++;
          } catch (err) {
            expect(err.name, `${fn} field ${names[i]} = ${String(v)}: ${err.message}`).to.equal('RnnkitError');
            threw++;
          }
        }
        // Too few fields (the last one, async, is required).
        const few = Object.fromEntries(Object.entries(args()).slice(0, i));
        expect(() => native()[fn](few)).to.throw();
      }
    }
    expect(threw).to.be.greaterThan(ran);
  });
});
