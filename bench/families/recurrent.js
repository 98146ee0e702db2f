'use strict';
// Recurrent op: ours (forward inference, forward training, backward) against oneDNN's RNN
// primitives and onnxruntime-node (inference only), on the shapes of issue 4 (f32, I = H,
// sequence-major): S1 T=64 B=32 H=256; S2 T=64 B=64 H=512; S3 T=128 B=1 H=512; S4 T=64 B=32
// H=1024; S5 T=32 B=16 H=512 two layers bidirectional; GRU (both forms) and RNN-tanh on S1 and S2.
// GFLOP/s count the GEMMs only (forward 2·T·B·G·H·(I + H) per layer and direction, backward twice
// that) and are set against the FMA peak measured in the same run. Saved bytes (what our training
// forward keeps) sit next to oneDNN's training workspace.
// Peers: bench/peers/onednn_rnn.cc, compiled here with g++ against the installed libdnnl-dev and
// run in a child process with OMP_NUM_THREADS = our thread count; onnxruntime-node on a model
// built by bench/peers/onnx-model.js from our exportWeights('onnx'), checked against our output
// before it is timed. Rows are timed one after another (ours, then each peer), so a ratio compares
// figures taken close together on a machine whose load drifts.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { recurrentModel } = require('../peers/onnx-model');

const ONEDNN_MISSING = 'missing: apt-get install libdnnl-dev';
const ORT_MISSING = 'missing: ONNXRUNTIME_NODE_INSTALL_CUDA=skip npm install --save-dev onnxruntime-node';

const SHAPES = {
  S1: { T: 64, B: 32, H: 256, L: 1, bidir: false },
  S2: { T: 64, B: 64, H: 512, L: 1, bidir: false },
  S3: { T: 128, B: 1, H: 512, L: 1, bidir: false },
  S4: { T: 64, B: 32, H: 1024, L: 1, bidir: false },
  S5: { T: 32, B: 16, H: 512, L: 2, bidir: true },
};

// kind: [Recurrent mode, linearBeforeReset, oneDNN cell, gate count]
const KINDS = {
  lstm: ['lstm', true, 'lstm', 4],
  gru: ['gru', true, 'lbr_gru', 3],
  'gru-onnx': ['gru', false, 'gru', 3],
  'rnn-tanh': ['rnn_tanh', true, 'rnn', 1],
};

function caseList(quick) {
  if (quick) return [['lstm', 'S1'], ['gru', 'S1'], ['lstm', 'S3']];
  const list = Object.keys(SHAPES).map((s) => ['lstm', s]);
  for (const kind of ['gru', 'gru-onnx', 'rnn-tanh']) for (const s of ['S1', 'S2']) list.push([kind, s]);
  return list;
}

function forwardFlops(kind, s) {
  const G = KINDS[kind][3];
  const D = s.bidir ? 2 : 1;
  let f = 0;
  for (let l = 0; l < s.L; l++) f += D * 2 * s.T * s.B * G * s.H * ((l === 0 ? s.H : D * s.H) + s.H);
  return f;
}

// The oneDNN peer, compiled once per run into bench/results/; null with a reason when it cannot be.
function buildOnednnPeer() {
  const include = ['/usr/include/dnnl.hpp', '/usr/include/oneapi/dnnl/dnnl.hpp'].some((p) => fs.existsSync(p));
  if (!include) return { missing: ONEDNN_MISSING };
  const outDir = path.join(__dirname, '..', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  const exe = path.join(outDir, 'onednn_rnn');
  const src = path.join(__dirname, '..', 'peers', 'onednn_rnn.cc');
  const r = spawnSync('g++', ['-O2', '-std=c++17', '-o', exe, src, '-ldnnl'], { encoding: 'utf8' });
  if (r.error) return { missing: `g++ not found (${r.error.message})` };
  if (r.status !== 0) return { missing: `${ONEDNN_MISSING} (compile failed: ${(r.stderr || '').split('\n')[0]})` };
  return { exe };
}

function runOnednn(peer, cell, s, threads, timing) {
  const args = [cell, s.T, s.B, s.H, s.H, s.L, s.bidir ? 2 : 1, timing.repeats, timing.minMs].map(String);
  const r = spawnSync(peer.exe, args, {
    encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) }, maxBuffer: 1 << 20,
  });
  if (r.status !== 0) return { error: (r.stderr || `exit ${r.status}`).trim().split('\n').pop() };
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  return out;
}

function loadOrt() {
  try {
    return require('onnxruntime-node');
  } catch (err) {
    return null;
  }
}

function randomArray(n, seed) {
  let s = seed >>> 0;
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

function maxRelDiff(a, b) {
  let scale = 1e-6;
  let diff = 0;
  for (let i = 0; i < a.length; i++) {
    scale = Math.max(scale, Math.abs(a[i]));
    diff = Math.max(diff, Math.abs(a[i] - b[i]));
  }
  return diff / scale;
}

module.exports = {
  description: 'Recurrent op (LSTM / GRU / RNN) vs oneDNN RNN primitives and onnxruntime-node: ms, GFLOP/s, % of FMA peak, saved bytes',
  async run({ rnnkit, native, harness, quick }) {
    const threads = Math.min(2, os.cpus().length);
    rnnkit.setNumThreads(threads);
    const timing = quick ? { warmup: 1, repeats: 3, minMs: 10 } : { warmup: 2, repeats: 5, minMs: 30 };
    const limits = harness.limits(native, threads);
    const peak = limits.fmaPeakGflops;
    process.stdout.write(`FMA peak ${peak.toFixed(1)} GFLOP/s, copy ${limits.copyGBs.toFixed(1)} GB/s (${threads} threads)\n`);

    const onednn = buildOnednnPeer();
    process.stdout.write(`oneDNN: ${onednn.missing || 'compiled bench/peers/onednn_rnn.cc'}\n`);
    const ort = loadOrt();
    process.stdout.write(`onnxruntime-node: ${ort ? 'loaded' : ORT_MISSING}\n`);
    let onednnVersion = null;

    const rows = [];
    for (const [kind, shapeName] of caseList(quick)) {
      const s = SHAPES[shapeName];
      const [mode, lbr, cell] = KINDS[kind];
      const name = `${kind} ${shapeName}`;
      const op = new rnnkit.Recurrent({ mode, inputSize: s.H, hiddenSize: s.H, numLayers: s.L, bidirectional: s.bidir,
        linearBeforeReset: lbr, seed: 7 });
      const D = s.bidir ? 2 : 1;
      const xData = randomArray(s.T * s.B * s.H, 11);
      const x = rnnkit.tensor(xData, [s.T, s.B, s.H]);
      const dy = rnnkit.tensor(randomArray(s.T * s.B * D * s.H, 13), [s.T, s.B, D * s.H]);
      const fl = forwardFlops(kind, s);

      const inf = await harness.measure(() => op.forwardSync(x).y.dispose(), timing);
      const fwd = await harness.measure(() => op.forwardSync(x, { training: true }).saved.release(), timing);
      const f = op.forwardSync(x, { training: true });
      const bwd = await harness.measure(() => op.backwardSync(f.saved, { dy }).dx.dispose(), timing);
      const savedBytes = 4 * native.recurrentSavedSize({ mode, inputSize: s.H, hiddenSize: s.H, numLayers: s.L,
        bidirectional: s.bidir, skipInput: false, projSize: 0, cellClip: 0, peepholes: false, linearBeforeReset: lbr }, s.T, s.B);
      const row = {
        case: name, oursInf: inf.median, oursFwd: fwd.median, oursBwd: bwd.median,
        oursTrain: fwd.median + bwd.median, savedBytes,
        infGflops: fl / inf.median / 1e6, trainGflops: (3 * fl) / (fwd.median + bwd.median) / 1e6,
      };
      row.infPeak = row.infGflops / peak;
      row.trainPeak = row.trainGflops / peak;

      if (onednn.exe) {
        const r = runOnednn(onednn, cell, s, threads, timing);
        if (r.error) {
          row.onednnError = r.error;
          process.stdout.write(`oneDNN ${name}: ${r.error}\n`);
        } else {
          onednnVersion = r.version;
          row.dnnlInf = r.inferenceMs;
          row.dnnlFwd = r.trainingForwardMs;
          row.dnnlBwd = r.backwardMs;
          row.dnnlTrain = r.trainingForwardMs + r.backwardMs;
          row.workspaceBytes = r.workspaceBytes;
          row.trainRatio = row.oursTrain / row.dnnlTrain;
        }
      }
      if (ort) {
        const sess = await ort.InferenceSession.create(recurrentModel(op, s.T, s.B), {
          intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
        });
        const feeds = { x: new ort.Tensor('float32', xData, [s.T, s.B, s.H]) };
        const ours = op.forwardSync(x).y;
        const diff = maxRelDiff(ours.data, (await sess.run(feeds)).y.data);
        ours.dispose();
        row.ortDiff = diff;
        if (diff > 1e-4) {
          process.stdout.write(`onnxruntime ${name}: output differs from ours by ${diff.toExponential(2)} (relative); not timed\n`);
        } else {
          row.ortInf = (await harness.measure(() => sess.run(feeds), timing)).median;
        }
        await sess.release();
      }
      const peers = [row.dnnlInf, row.ortInf].filter((v) => typeof v === 'number');
      if (peers.length) row.infRatio = row.oursInf / Math.min(...peers);
      f.saved.release();
      op.dispose();
      rows.push(row);
      process.stdout.write(`${name}: ours inf ${row.oursInf.toFixed(2)} ms, train ${row.oursTrain.toFixed(2)} ms` +
        `${row.dnnlTrain ? `; oneDNN inf ${row.dnnlInf.toFixed(2)}, train ${row.dnnlTrain.toFixed(2)}` : ''}` +
        `${row.ortInf ? `; ort inf ${row.ortInf.toFixed(2)}` : ''}\n`);
    }

    const f = harness.fmt;
    harness.printTable(`Recurrent, ms per call (median of ${timing.repeats}); ratios ours/peer (< 1: ours faster); ` +
      `GF/s and % of the ${peak.toFixed(0)} GFLOP/s FMA peak (${threads} threads)`, [
      { key: 'case', title: 'case' },
      { key: 'oursInf', title: 'inf', fmt: f.ms },
      { key: 'dnnlInf', title: 'dnnl inf', fmt: f.ms },
      { key: 'ortInf', title: 'ort inf', fmt: f.ms },
      { key: 'infRatio', title: 'inf/best', fmt: f.ratio },
      { key: 'infGflops', title: 'inf GF/s', fmt: f.num },
      { key: 'infPeak', title: '%pk', fmt: f.pct },
      { key: 'oursFwd', title: 'fwd-tr', fmt: f.ms },
      { key: 'oursBwd', title: 'bwd', fmt: f.ms },
      { key: 'dnnlFwd', title: 'dnnl fwd-tr', fmt: f.ms },
      { key: 'dnnlBwd', title: 'dnnl bwd', fmt: f.ms },
      { key: 'trainRatio', title: 'train/dnnl', fmt: f.ratio },
      { key: 'trainGflops', title: 'train GF/s', fmt: f.num },
      { key: 'trainPeak', title: '%pk', fmt: f.pct },
      { key: 'savedBytes', title: 'saved MB', fmt: f.mb },
      { key: 'workspaceBytes', title: 'dnnl ws MB', fmt: f.mb },
    ], rows);
    const warning = harness.noiseWarning();
    if (warning) process.stdout.write(`${warning}: compare ratios within a row, not across runs\n`);
    const file = harness.save('recurrent', {
      threads, timing, limits, peers: { onednn: onednn.missing || `oneDNN ${onednnVersion}`, onnxruntime: ort ? 'onnxruntime-node' : ORT_MISSING },
      rows,
    }, {
      title: 'Recurrent, ms per call (lower is better)', rows, label: 'case', unit: 'ms',
      series: [
        { key: 'oursInf', title: 'ours inf' }, { key: 'dnnlInf', title: 'oneDNN inf' }, { key: 'ortInf', title: 'ort inf' },
        { key: 'oursTrain', title: 'ours train' }, { key: 'dnnlTrain', title: 'oneDNN train' },
      ],
    });
    process.stdout.write(`saved ${file}\n`);
    rnnkit.setNumThreads(0);
    return { rows };
  },
};
