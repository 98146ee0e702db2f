'use strict';
// The Recurrent case table: the modes (GRU in both forms), the CPU test matrix of test/20 (against
// the float64 reference) and the CUDA parity matrix of test/41 (against the CPU op), with their
// tolerances. test/10 checks the reference itself on the same modes. A new case is one entry or
// one more value in a rotation here; the coverage test of test/20 asserts every option value
// still appears.

const MODES = [
  { mode: 'lstm' },
  { mode: 'gru', linearBeforeReset: true },
  { mode: 'gru', linearBeforeReset: false },
  { mode: 'rnn_tanh' },
  { mode: 'rnn_relu' },
];
const GRADS = ['all', 'dy', 'state'];

// The matrix: each mode × layers × direction, with the remaining options rotated by case index.
function buildCases() {
  const cases = [];
  let k = 0;
  for (const m of MODES) {
    let j = 0;
    for (const numLayers of [1, 2, 3]) {
      for (const bidirectional of [false, true]) {
        const lstm = m.mode === 'lstm';
        const c = {
          cfg: {
            ...m, numLayers, bidirectional,
            batchFirst: k % 2 === 1,
            inputMode: j % 3 === 2 ? 'skip' : 'linear',
            dropout: numLayers > 1 && (j + Math.floor(k / 6)) % 2 === 0 ? 0.4 : 0,
            projSize: lstm && j % 2 === 1 ? -2 : 0,
            cellClip: lstm && j % 3 === 1 ? 0.6 : 0,
            peepholes: lstm && (j === 0 || j === 3 || j === 5),
          },
          lengths: Math.floor(k / 2) % 2 === 0,
          states: k % 3 !== 2,
          grads: GRADS[(k + Math.floor(k / 3)) % 3],
          dropoutOn: j % 4 !== 3,
          explicitDropoutSeed: j % 2 === 0,
          accumulate: k % 4 === 1 || k % 4 === 2,
          // Hidden sizes below, at and past the AVX2 width with tails; inputs narrower and wider.
          sizes: { T: 6, B: 5, H: [5, 11, 17][k % 3], I: [3, 9][Math.floor(k / 3) % 2] },
          async: k % 2 === 0,
        };
        cases.push(c);
        k++;
        j++;
      }
    }
  }
  return cases;
}


function caseTitle(c) {
  const o = c.cfg;
  const parts = [o.mode + (o.mode === 'gru' ? (o.linearBeforeReset ? '(lbr)' : '(onnx)') : ''), `L${o.numLayers}`,
    o.bidirectional ? 'bi' : 'uni'];
  if (o.batchFirst) parts.push('batchFirst');
  if (o.inputMode === 'skip') parts.push('skip');
  if (o.projSize) parts.push('proj');
  if (o.cellClip) parts.push('clip');
  if (o.peepholes) parts.push('peephole');
  if (o.dropout) parts.push(c.dropoutOn ? 'dropout' : 'dropout-off');
  if (c.lengths) parts.push('lengths');
  parts.push(c.states ? 'hx' : 'no-hx', `grads:${c.grads}`);
  if (c.accumulate) parts.push('accumulate');
  parts.push(c.async ? 'async' : 'sync');
  return parts.join(' ');
}


// The CUDA parity matrix (test/41): every mode × layers {1, 2, 3} × uni/bi × lengths × batchFirst,
// and for LSTM every combination of projection, clip and peepholes; hidden sizes, skip input and
// dropout rotate over the case counter. Tolerance: |gpu − cpu| <= tol · max(max|cpu|, 1e-3).
function cudaMatrix() {
  const out = [];
  let counter = 0;
  for (const m of MODES) {
    for (const numLayers of [1, 2, 3]) {
      for (const bidirectional of [false, true]) {
        for (const lens of [false, true]) {
          for (const batchFirst of [false, true]) {
            const extras = m.mode === 'lstm' ? 8 : 1;
            for (let extra = 0; extra < extras; extra++) {
              counter++;
              const k = counter;
              const H = [5, 8, 17][Math.floor(k / 3) % 3];
              const skip = k % 3 === 1;
              const cfg = {
                ...m, numLayers, bidirectional, batchFirst, hiddenSize: H, inputSize: skip ? H : 3 + (k % 4),
                inputMode: skip ? 'skip' : 'linear', projSize: extra & 1 ? 3 : 0, cellClip: extra & 2 ? 0.8 : 0,
                peepholes: (extra & 4) !== 0, dropout: numLayers > 1 && Math.floor(k / 2) % 2 === 1 ? 0.3 : 0, seed: k,
              };
              const title = `${m.mode}${m.linearBeforeReset === false ? '-onnx' : ''} L${numLayers}${bidirectional ? ' bi' : ''}` +
                `${lens ? ' lens' : ''}${batchFirst ? ' bf' : ''}${skip ? ' skip' : ''}${cfg.projSize ? ' proj' : ''}` +
                `${cfg.cellClip ? ' clip' : ''}${cfg.peepholes ? ' peep' : ''}${cfg.dropout ? ' dropout' : ''}`;
              out.push({ title, cfg, lens, accumulate: k % 5 === 2 });
            }
          }
        }
      }
    }
  }
  return out;
}

module.exports = {
  MODES,
  GRADS,
  cpu: { CASES: buildCases(), caseTitle, tol: { forward: 1e-5, grad: 1e-4 } },
  cuda: { CASES: cudaMatrix(), tol: 1e-4 },
};
