'use strict';
// Recurrent op: ours (inference, training forward, backward) against oneDNN's RNN primitives
// (inference and training), onnxruntime-node and TensorFlow.js cpu/wasm (inference), and on a
// GPU box ours on CUDA against PyTorch/cuDNN — all on bench/shapes.js's RECURRENT_CASES (f32,
// I = H, sequence-major). GFLOP/s count the GEMMs only (bench/shapes.js says how) and are set
// against the FMA peak measured in the same run. Saved bytes (what our training forward keeps)
// sit next to oneDNN's training workspace.
// Peers: bench/peers/onednn_rnn.cc, compiled here with g++ against the installed libdnnl-dev and
// run in a child process with OMP_NUM_THREADS = our thread count; onnxruntime-node on a model built
// by bench/peers/onnx-model.js from our exportWeights('onnx'), and TF.js (bench/peers/tfjs.js) on
// our weights: both are checked against our output before they are timed. Each case is timed
// ours-then-peers back to back, so a ratio compares figures taken close together.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { recurrentModel } = require('../peers/onnx-model');


// The oneDNN peer, compiled once per run; { exe } or { missing }.
function buildOnednnPeer(harness, peers) {
  if (!peers.onednn.found) return { missing: peers.onednn.line };
  const outDir = harness.resultsDir();
  fs.mkdirSync(outDir, { recursive: true });
  const exe = path.join(outDir, 'onednn_rnn');
  const src = path.join(__dirname, '..', 'peers', 'onednn_rnn.cc');
  const r = spawnSync('g++', ['-O2', '-std=c++17', '-o', exe, src, '-ldnnl'], { encoding: 'utf8' });
  if (r.error) return { missing: `oneDNN: g++ not found (${r.error.message})` };
  if (r.status !== 0) return { missing: `oneDNN: bench/peers/onednn_rnn.cc did not compile: ${(r.stderr || '').split('\n')[0]}` };
  return { exe };
}

function runOnednn(exe, cell, s, threads, timing, harness) {
  const args = [cell, s.T, s.B, s.I, s.H, s.L, s.D, timing.repeats, timing.minMs].map(String);
  const r = spawnSync(exe, args, { encoding: 'utf8', env: { ...process.env, OMP_NUM_THREADS: String(threads) }, maxBuffer: 1 << 20 });
  if (r.status !== 0) return { error: (r.stderr || `exit ${r.status}`).trim().split('\n').pop() };
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  if (out.error) return out;
  return { version: out.version, inf: harness.summarize(out.inferenceMs), fwd: harness.summarize(out.trainingForwardMs),
    bwd: harness.summarize(out.backwardMs), workspaceBytes: out.workspaceBytes };
}

// PyTorch/cuDNN on the GPU through bench/gpu/torch_rnn.py, on the same cases; { byCase } or { error }.
function runTorch(list, shapes, timing) {
  // PyTorch's GRU is the linear-before-reset (cuDNN) form: the ONNX-default GRU has no torch twin.
  const cases = list.filter((c) => shapes.CELLS[c.cell].linearBeforeReset).map((c) => {
    const s = shapes.RECURRENT[c.shape];
    const cell = shapes.CELLS[c.cell];
    return { name: `${c.cell} ${c.shape}`, mode: cell.mode, T: s.T, B: s.B, I: s.I, H: s.H, L: s.L, bidirectional: s.D === 2 };
  });
  const r = spawnSync('python3', [path.join(__dirname, '..', 'gpu', 'torch_rnn.py'), '--cases', JSON.stringify(cases), '--reps', String(timing.repeats), '--fp32-only'],
    { encoding: 'utf8', timeout: 600000, maxBuffer: 16 << 20 });
  if (r.error || r.status !== 0) return { error: (r.stderr || String(r.error)).trim().split('\n').pop() };
  const out = JSON.parse(r.stdout);
  if (out.skipped) return { error: out.skipped };
  return { info: `torch ${out.torch}, cuDNN ${out.cudnn}, ${out.device}`, byCase: new Map(out.results.map((x) => [x.shape, x])) };
}



module.exports = {
  description: 'Recurrent op (LSTM / GRU / RNN) vs oneDNN RNN primitives, onnxruntime-node, TensorFlow.js cpu/wasm (and PyTorch/cuDNN on a GPU): ms, GFLOP/s, % of FMA peak, saved bytes',
  async run({ rnnkit, native, harness, shapes, peers, quick }) {
    const threads = Math.min(2, os.cpus().length);
    rnnkit.setNumThreads(threads);
    const timing = quick ? { warmup: 1, repeats: 3, minMs: 10 } : { warmup: 2, repeats: 5, minMs: 30 };
    const budgetMs = quick ? 1500 : 4000;
    const monitor = harness.noiseMonitor(native, threads);
    const notes = [];

    const onednn = buildOnednnPeer(harness, peers);
    if (onednn.missing) process.stdout.write(`${onednn.missing}\n`);
    const ortPeer = peers.ort.found ? require('onnxruntime-node') : null;
    const tfPeer = peers.tfjsCpu.found || peers.tfjsWasm.found ? harness.tryRequire('./peers/tfjs') : null;
    const tf = tfPeer ? await tfPeer.load({ threads }) : null;
    const tfBackends = ['cpu', 'wasm'].filter((b) => peers[b === 'cpu' ? 'tfjsCpu' : 'tfjsWasm'].found && tf && !tf.missing && tf.backends[b] && tf.backends[b].ok);
    let onednnVersion = null;
    const tfRate = {}; // GFLOP/s a TF.js backend reached: skip a case predicted to blow the budget

    const list = shapes.RECURRENT_CASES.filter((c) => (quick ? c.quick : true));
    const rows = [];
    for (const rc of list) {
      const s = shapes.RECURRENT[rc.shape];
      const cell = shapes.CELLS[rc.cell];
      const name = `${rc.cell} ${rc.shape}`;
      const op = new rnnkit.Recurrent({ mode: cell.mode, inputSize: s.I, hiddenSize: s.H, numLayers: s.L, bidirectional: s.D === 2,
        linearBeforeReset: cell.linearBeforeReset, seed: 7 });
      const xData = harness.randomArray(s.T * s.B * s.I, 11);
      const x = rnnkit.tensor(xData, [s.T, s.B, s.I]);
      const dy = rnnkit.tensor(harness.randomArray(s.T * s.B * s.D * s.H, 13), [s.T, s.B, s.D * s.H]);
      const fl = shapes.recurrentFlops(rc.cell, s);

      const inf = await harness.measure(() => op.forwardSync(x).y.dispose(), timing);
      const fwd = await harness.measure(() => op.forwardSync(x, { training: true }).saved.release(), timing);
      const f = op.forwardSync(x, { training: true });
      const bwd = await harness.measure(() => op.backwardSync(f.saved, { dy }).dx.dispose(), timing);
      monitor.note(inf, fwd, bwd);
      const savedBytes = 4 * op.savedSize(s.T, s.B);
      const row = { case: name, oursInf: inf, oursFwd: fwd, oursBwd: bwd, oursTrain: fwd.median + bwd.median, savedBytes,
        infGflops: fl / inf.median / 1e6, trainGflops: (3 * fl) / (fwd.median + bwd.median) / 1e6 };

      if (onednn.exe) {
        const r = runOnednn(onednn.exe, cell.onednn, s, threads, timing, harness);
        if (r.error) {
          notes.push(`oneDNN ${name}: ${r.error}`);
        } else {
          onednnVersion = r.version;
          monitor.note(r.inf, r.fwd, r.bwd);
          Object.assign(row, { dnnlInf: r.inf, dnnlFwd: r.fwd, dnnlBwd: r.bwd, dnnlTrain: r.fwd.median + r.bwd.median, workspaceBytes: r.workspaceBytes });
          row.trainVsDnnl = row.dnnlTrain / row.oursTrain;
        }
      }
      let expectedY = null;
      if (ortPeer || tfBackends.length) {
        const y = op.forwardSync(x).y;
        expectedY = y.data.slice();
        y.dispose();
      }
      if (ortPeer) {
        const sess = await ortPeer.InferenceSession.create(recurrentModel(op, s.T, s.B), {
          intraOpNumThreads: threads, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all',
        });
        const feeds = { x: new ortPeer.Tensor('float32', xData, [s.T, s.B, s.I]) };
        const diff = harness.maxRelDiff(expectedY, (await sess.run(feeds)).y.data);
        if (diff > 1e-4) {
          notes.push(`onnxruntime ${name}: output differs from ours by ${diff.toExponential(2)} (relative); not timed`);
        } else {
          row.ortInf = await harness.measure(() => sess.run(feeds), timing);
          monitor.note(row.ortInf);
        }
        await sess.release();
      }
      // TF.js: single-layer unidirectional LSTM (its layers API has no cuDNN-style GRU form to match).
      if (tfBackends.length && rc.cell === 'lstm' && s.L === 1 && s.D === 1) {
        const p = (kind) => op.getParam({ layer: 0, direction: 0, kind }).data;
        const args = { T: s.T, B: s.B, I: s.I, H: s.H, x: xData, wIh: p('w_ih'), wHh: p('w_hh'), bIh: p('b_ih'), bHh: p('b_hh'), expectedY };
        for (const backend of tfBackends) {
          const key = backend === 'cpu' ? 'tfjsCpuInf' : 'tfjsWasmInf';
          if (tfRate[backend] && fl / tfRate[backend] / 1e6 > budgetMs) {
            notes.push(`tfjs ${backend} ${name}: skipped (~${(fl / tfRate[backend] / 1e9).toFixed(0)} s a call at its rate on the smaller cases)`);
            continue;
          }
          const t = await tfPeer.lstmInference(backend, args, { measure: harness.measure, timing, budgetMs });
          if (t.error) {
            notes.push(`tfjs ${backend} ${name}: ${t.error}`);
            continue;
          }
          row[key] = t;
          monitor.note(t);
          tfRate[backend] = Math.max(tfRate[backend] || 0, fl / t.median / 1e6);
          if (t.budgetExceeded) notes.push(`tfjs ${backend} ${name}: one call took ${(t.median / 1e3).toFixed(1)} s: a single sample`);
        }
      }
      // The inference target is set against the faster of oneDNN and onnxruntime.
      const nativePeers = ['dnnlInf', 'ortInf'].filter((k) => row[k]);
      if (nativePeers.length) row.infVsDnnlOrt = Math.min(...nativePeers.map((k) => row[k].median)) / inf.median;
      const peerInf = ['dnnlInf', 'ortInf', 'tfjsCpuInf', 'tfjsWasmInf'].filter((k) => row[k]);
      if (peerInf.length) {
        const best = peerInf.reduce((a, b) => (row[a].median <= row[b].median ? a : b));
        row.infVsBest = row[best].median / inf.median;
        row.bestPeer = { dnnlInf: 'oneDNN', ortInf: 'onnxruntime', tfjsCpuInf: 'tfjs cpu', tfjsWasmInf: 'tfjs wasm' }[best];
      }
      f.saved.release();
      op.dispose();
      monitor.probePeak();
      rows.push(row);
      process.stdout.write(`  ${name}: ours inf ${inf.median.toFixed(2)} ms, train ${row.oursTrain.toFixed(2)} ms` +
        `${row.dnnlTrain ? `; oneDNN inf ${row.dnnlInf.median.toFixed(2)}, train ${row.dnnlTrain.toFixed(2)}` : ''}` +
        `${row.ortInf ? `; ort inf ${row.ortInf.median.toFixed(2)}` : ''}` +
        `${row.tfjsCpuInf ? `; tfjs cpu inf ${row.tfjsCpuInf.median.toFixed(1)}` : ''}` +
        `${row.tfjsWasmInf ? `; tfjs wasm inf ${row.tfjsWasmInf.median.toFixed(1)}` : ''}\n`);
    }

    // GPU: ours on CUDA against PyTorch/cuDNN, on a machine that has one.
    const gpuRows = [];
    if (peers.gpu.found) {
      const torch = peers.torch.found ? runTorch(list, shapes, timing) : { error: peers.torch.line };
      if (torch.error) notes.push(`PyTorch/cuDNN: ${torch.error}`);
      for (const rc of list) {
        const s = shapes.RECURRENT[rc.shape];
        const cell = shapes.CELLS[rc.cell];
        const name = `${rc.cell} ${rc.shape}`;
        const op = new rnnkit.Recurrent({ mode: cell.mode, inputSize: s.I, hiddenSize: s.H, numLayers: s.L, bidirectional: s.D === 2,
          linearBeforeReset: cell.linearBeforeReset, seed: 7, device: 'cuda' });
        const x = rnnkit.tensor(harness.randomArray(s.T * s.B * s.I, 11), [s.T, s.B, s.I]).to('cuda');
        const dy = rnnkit.tensor(harness.randomArray(s.T * s.B * s.D * s.H, 13), [s.T, s.B, s.D * s.H]).to('cuda');
        const inf = await harness.measure(() => op.forwardSync(x).y.dispose(), timing);
        const fwd = await harness.measure(() => op.forwardSync(x, { training: true }).saved.release(), timing);
        const f = op.forwardSync(x, { training: true });
        const bwd = await harness.measure(() => op.backwardSync(f.saved, { dy }).dx.dispose(), timing);
        const row = { case: name, algorithm: op.lastRun ? op.lastRun.algorithm : null, oursInf: inf, oursTrain: fwd.median + bwd.median };
        const t = torch.byCase && torch.byCase.get(name);
        if (t && !t.error) {
          row.torchInf = t.infer_ms;
          row.torchTrain = t.train_ms;
          row.infVsTorch = t.infer_ms / inf.median;
          row.trainVsTorch = t.train_ms / row.oursTrain;
        }
        f.saved.release();
        x.dispose();
        dy.dispose();
        op.dispose();
        gpuRows.push(row);
      }
      if (torch.info) notes.push(`GPU peer: ${torch.info}`);
    }
    const noise = monitor.finish();
    const peak = noise.fmaPeakBest;
    for (const row of rows) {
      row.infPeak = row.infGflops / peak;
      row.trainPeak = row.trainGflops / peak;
    }

    const fm = harness.fmt;
    const has = (k) => rows.some((r) => r[k] !== undefined);
    harness.printTable(`Recurrent inference, ms per call, median (min–max) of ${timing.repeats}; "vs best" = best peer's time / ours (> 1: ours faster); ` +
      `GF/s and % of the ${peak.toFixed(0)} GFLOP/s FMA peak (${threads} threads, best probe of the run)`, [
      { key: 'case', title: 'case' },
      { key: 'oursInf', title: 'rnnkit', fmt: fm.ms },
      ...[['dnnlInf', 'oneDNN'], ['ortInf', 'onnxruntime'], ['tfjsCpuInf', 'tfjs cpu'], ['tfjsWasmInf', 'tfjs wasm']].filter(([k]) => has(k))
        .map(([key, title]) => ({ key, title, fmt: fm.ms })),
      { key: 'infVsBest', title: 'vs best', fmt: fm.ratio },
      { key: 'bestPeer', title: 'best peer' },
      { key: 'infGflops', title: 'GF/s', fmt: fm.num },
      { key: 'infPeak', title: '% peak', fmt: fm.pct },
    ], rows);
    harness.printTable(`Recurrent training (forward that keeps activations + backward), ms, median (min–max); ` +
      `"vs oneDNN" = oneDNN's forward+backward time / ours; saved MB = what our training forward keeps besides y ` +
      '(RNN: nothing, y is the hidden sequence), oneDNN ws MB = its training workspace', [
      { key: 'case', title: 'case' },
      { key: 'oursFwd', title: 'fwd', fmt: fm.ms },
      { key: 'oursBwd', title: 'bwd', fmt: fm.ms },
      ...(has('dnnlFwd') ? [{ key: 'dnnlFwd', title: 'oneDNN fwd', fmt: fm.ms }, { key: 'dnnlBwd', title: 'oneDNN bwd', fmt: fm.ms },
        { key: 'trainVsDnnl', title: 'vs oneDNN', fmt: fm.ratio }] : []),
      { key: 'trainGflops', title: 'GF/s', fmt: fm.num },
      { key: 'trainPeak', title: '% peak', fmt: fm.pct },
      { key: 'savedBytes', title: 'saved MB', fmt: fm.mb },
      ...(has('workspaceBytes') ? [{ key: 'workspaceBytes', title: 'oneDNN ws MB', fmt: fm.mb }] : []),
    ], rows);
    // The targets of issue 17, in the suite's convention: "at most 0.9x the peer's time" is a speed
    // ratio of at least 1/0.9 = 1.11x.
    const targets = [];
    const trainShapes = { lstm: ['S1', 'S2', 'S4', 'S5'], gru: ['S1', 'S2'], 'gru-onnx': ['S1', 'S2'], 'rnn-tanh': ['S1', 'S2'] };
    for (const row of rows) {
      const [cell, shape] = row.case.split(' ');
      if ((trainShapes[cell] || []).includes(shape)) {
        targets.push({ case: row.case, measure: 'training vs oneDNN', target: 1 / 0.9, value: row.trainVsDnnl, note: 'time ≤ 0.9x' });
      }
      targets.push({ case: row.case, measure: 'inference vs faster of oneDNN/onnxruntime', target: 1 / 0.9, value: row.infVsDnnlOrt, note: 'time ≤ 0.9x' });
    }
    const targetRows = harness.printTargets('Targets (issue 17; ratios are speed ratios, > 1 = rnnkit faster)', targets);
    if (gpuRows.length) {
      harness.printTable(`Recurrent on ${peers.gpu.version}: ours (CUDA) vs PyTorch/cuDNN fp32, ms (median); "vs" = torch time / ours`, [
        { key: 'case', title: 'case' }, { key: 'algorithm', title: 'our algorithm' },
        { key: 'oursInf', title: 'inf', fmt: fm.ms }, { key: 'torchInf', title: 'torch inf', fmt: fm.ms }, { key: 'infVsTorch', title: 'vs', fmt: fm.ratio },
        { key: 'oursTrain', title: 'train', fmt: fm.ms }, { key: 'torchTrain', title: 'torch train', fmt: fm.ms }, { key: 'trainVsTorch', title: 'vs', fmt: fm.ratio },
      ], gpuRows);
    } else {
      process.stdout.write(`${peers.gpu.line}; ${peers.torch.line}\n`);
    }
    if (harness.tfjsWasmNote(tf)) notes.push(harness.tfjsWasmNote(tf));
    for (const n of notes) process.stdout.write(`note: ${n}\n`);

    const brief = harness.briefRows;
    const peerInfo = {
      onednn: onednn.missing || `oneDNN ${onednnVersion}`, onnxruntime: peers.ort.line,
      tfjs: tf ? (tf.missing || `tfjs ${tf.version}: ${tfBackends.join(', ') || 'no backend'}`) : peers.tfjsCpu.line,
      gpu: peers.gpu.line, torch: peers.torch.line,
    };
    const file = harness.save('recurrent', { threads, timing, noise, limits: { fmaPeakGflops: peak }, peers: peerInfo, notes, rows: brief(rows), gpu: brief(gpuRows), targets: targetRows }, {
      title: 'Recurrent, ms per call (lower is better)', rows, label: 'case', unit: 'ms',
      series: [
        { key: 'oursInf', title: 'rnnkit inf' }, { key: 'dnnlInf', title: 'oneDNN inf' }, { key: 'ortInf', title: 'onnxruntime inf' },
        { key: 'tfjsWasmInf', title: 'tfjs wasm inf' }, { key: 'oursTrain', title: 'rnnkit train' }, { key: 'dnnlTrain', title: 'oneDNN train' },
      ],
    });
    process.stdout.write(`wrote ${file}\n`);
    rnnkit.setNumThreads(0);
    return { noise, peers: peerInfo, rows: brief(rows), gpu: brief(gpuRows), targets: targetRows };
  },
};
