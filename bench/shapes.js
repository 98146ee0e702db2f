'use strict';
// The one shape table of the benchmark suite. Every family, every peer (oneDNN, OpenBLAS,
// onnxruntime-node, TensorFlow.js, PyTorch/cuDNN) and every FLOP or byte count reads its sizes
// from here, so a figure of one library is always set against another's on the same work.
//
// Recurrent shapes S1–S5 are issue 4's (f32, input size I = H, sequence-major [T, B, I]); the GEMM
// shapes are the products those recurrent shapes make (the per-step h·W_hhᵀ and the whole-sequence
// input projection x·W_ihᵀ) plus the square 2048³; RMSNorm shapes span wide, narrow, one-row and
// many-row cases; the training step is the demo model (examples/demo.js).
//
// Counting rules (the same for every peer):
// - GEMM: 2·M·N·K FLOPs.
// - Recurrent: the GEMMs only, forward 2·T·B·G·H·(I_l + H) per layer l and direction (G gates:
//   LSTM 4, GRU 3, RNN 1; I_l = I for layer 0, D·H above); backward twice the forward; a training
//   step (forward + backward) three times the forward. Cell element-wise work is not counted.
// - RMSNorm: bytes the op must move — forward reads x and writes y (2·R·C·4), backward reads dy and
//   x and writes dx (3·R·C·4); gamma, beta and the per-row statistics are negligible.
// - Training step: per token 3 × 2 × (LSTM multiply-adds 4·H·(I_l + H) per layer + decoder H·V).

// The recurrent shapes, cells and cases live in shapes.json, which the native tools
// (native/tools/bench_recurrent.cc, gpu_check_recurrent.cu) and bench/gpu/torch_rnn.py read too.
// Recurrent cases: [cell, shape]; `quick` marks the subset of `npm run bench -- --quick`.
const table = require('./shapes.json');

const RECURRENT = table.recurrent;
const CELLS = table.cells;
const RECURRENT_CASES = table.recurrentCases;

/** The GPU timing shapes in order (S1-S5 as LSTM, then table.gpuBench), as gpu_check_recurrent names them. */
function gpuBenchShapes() {
  const named = Object.entries(RECURRENT).map(([name, s]) => ({
    name: `${name} lstm T${s.T} B${s.B} H${s.H}${s.L > 1 ? ` L${s.L}` : ''}${s.D > 1 ? 'bi' : ''}`, mode: 'lstm', ...s,
  }));
  return [...named, ...table.gpuBench];
}

function recurrentFlops(cell, s, phase = 'forward') {
  const G = CELLS[cell].gates;
  let f = 0;
  for (let l = 0; l < s.L; l++) f += s.D * 2 * s.T * s.B * G * s.H * ((l === 0 ? s.I : s.D * s.H) + s.H);
  return phase === 'forward' ? f : phase === 'backward' ? 2 * f : 3 * f;
}

// GEMM cases: C[M, N] = A[M, K] · op(B). `packed` means B is packed once (the recurrent step's
// weights), which only rnnkit does; peers see the same product unpacked.
const GEMM_CASES = [
  { name: '2048³ NN', M: 2048, N: 2048, K: 2048, transA: false, transB: false, packed: false, threads: 'all', quick: true },
  { name: '2048³ NN', M: 2048, N: 2048, K: 2048, transA: false, transB: false, packed: false, threads: 1, quick: false },
  ...[256, 512, 1024].flatMap((H) => [1, 8, 32, 64].map((M) => ({
    name: `step M=${M} H=${H}`, M, N: 4 * H, K: H, transA: false, transB: true, packed: true, threads: 'all',
    quick: H === 512 && (M === 1 || M === 32),
  }))),
  // The public matmul with few rows and an unpacked, transposed B (nn.Linear's x·Wᵀ, user GEMMs).
  ...[[1, 4096, 1024], [8, 4096, 1024], [32, 2048, 512], [64, 2048, 512]].map(([M, N, K]) => ({
    name: `linear M=${M} ${N}x${K}`, M, N, K, transA: false, transB: true, packed: false, threads: 'all', quick: M === 8,
  })),
  ...Object.entries(RECURRENT).map(([name, s]) => ({
    name: `proj ${name} ${s.T * s.B}x${4 * s.H}x${s.I}`, M: s.T * s.B, N: 4 * s.H, K: s.I, transA: false, transB: true,
    packed: false, threads: 'all', quick: name === 'S1',
  })),
];

const gemmFlops = (c) => 2 * c.M * c.N * c.K;

const RMSNORM_CASES = [
  { rows: 4096, cols: 1024, quick: false },
  { rows: 1024, cols: 4096, quick: true },
  { rows: 64, cols: 65536, quick: false },
  { rows: 16384, cols: 1024, quick: false },
  { rows: 1, cols: 65536, quick: true },
  { rows: 8192, cols: 64, quick: true },
].map((c) => ({ ...c, name: `${c.rows}x${c.cols}` }));

const rmsnormBytes = (c, phase) => (phase === 'forward' ? 2 : 3) * c.rows * c.cols * 4;

// The demo model: one-hot V → L stacked LSTM layers of H → Linear V; T×B tokens per step.
const TRAIN = { V: 81, H: 128, L: 2, T: 64, B: 32, quickB: 8 };

function trainFlopsPerToken(m = TRAIN) {
  let macs = 0;
  for (let l = 0; l < m.L; l++) macs += 4 * m.H * ((l === 0 ? m.V : m.H) + m.H);
  macs += m.H * m.V;
  return 3 * 2 * macs;
}

// The step-net family runs the fused op's LSTM as a step net on S1 and S2, and a 4-layer stack.
const STEPNET = {
  shapes: ['S1', 'S2'],
  quickShapes: ['S1'],
  stack: { T: 64, B: 32, I: 256, H: 256, L: 4, D: 1 },
  quickStack: { T: 16, B: 32, I: 128, H: 128, L: 4, D: 1 },
};

/** Rows of the printed shape table (family, case, sizes, work per call, which runs use it). */
function shapeTable() {
  const rows = [];
  for (const r of shapeRows()) {
    const { quick, full, ...rest } = r;
    rows.push({ ...rest, runs: quick ? (full === false ? 'quick' : 'full, quick') : 'full' });
  }
  return rows;
}

function shapeRows() {
  const rows = [];
  for (const c of GEMM_CASES) {
    rows.push({ family: 'gemm', case: c.name + (c.threads === 1 ? ' 1T' : ''), sizes: `M=${c.M} N=${c.N} K=${c.K}${c.transB ? ' Bᵀ' : ''}${c.packed ? ' (B packed once)' : ''}`,
      work: `${(gemmFlops(c) / 1e9).toPrecision(3)} GFLOP`, quick: c.quick });
  }
  for (const rc of RECURRENT_CASES) {
    const s = RECURRENT[rc.shape];
    rows.push({ family: 'recurrent', case: `${rc.cell} ${rc.shape}`, sizes: `T=${s.T} B=${s.B} I=${s.I} H=${s.H}${s.L > 1 ? ` L=${s.L}` : ''}${s.D > 1 ? ' bidir' : ''}`,
      work: `fwd ${(recurrentFlops(rc.cell, s) / 1e9).toPrecision(3)} GFLOP, train ${(recurrentFlops(rc.cell, s, 'train') / 1e9).toPrecision(3)} GFLOP`, quick: rc.quick });
  }
  for (const c of RMSNORM_CASES) {
    rows.push({ family: 'rmsnorm', case: c.name, sizes: `rows=${c.rows} cols=${c.cols}`,
      work: `fwd ${(rmsnormBytes(c, 'forward') / 1e6).toPrecision(3)} MB, bwd ${(rmsnormBytes(c, 'backward') / 1e6).toPrecision(3)} MB`, quick: c.quick });
  }
  for (const name of STEPNET.shapes) {
    const s = RECURRENT[name];
    rows.push({ family: 'stepnet', case: `lstm ${name}`, sizes: `T=${s.T} B=${s.B} I=${s.I} H=${s.H}`,
      work: `fwd ${(recurrentFlops('lstm', s) / 1e9).toPrecision(3)} GFLOP`, quick: STEPNET.quickShapes.includes(name) });
  }
  for (const [label, s, quick] of [['4-layer stack', STEPNET.stack, false], ['4-layer stack (quick)', STEPNET.quickStack, true]]) {
    rows.push({ family: 'stepnet', case: label, sizes: `T=${s.T} B=${s.B} H=${s.H} L=${s.L}`,
      work: `fwd ${(recurrentFlops('lstm', s) / 1e9).toPrecision(3)} GFLOP`, quick, full: !quick });
  }
  for (const [B, quick] of [[TRAIN.B, false], [TRAIN.quickB, true]]) {
    const tokens = TRAIN.T * B;
    rows.push({ family: 'train', case: `demo model B=${B}`, sizes: `T=${TRAIN.T} B=${B} V=${TRAIN.V} H=${TRAIN.H} L=${TRAIN.L}`,
      work: `${((trainFlopsPerToken() * tokens) / 1e9).toPrecision(3)} GFLOP (${tokens} tokens)`, quick, full: !quick });
  }
  return rows;
}

module.exports = {
  RECURRENT, CELLS, RECURRENT_CASES, recurrentFlops, gpuBenchShapes,
  GEMM_CASES, gemmFlops,
  RMSNORM_CASES, rmsnormBytes,
  TRAIN, trainFlopsPerToken,
  STEPNET,
  shapeTable,
};
