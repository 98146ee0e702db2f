'use strict';
// Which peers this machine has, found once at the start of `npm run bench`: each is either found
// (with its version) or missing (with the line that installs it). Families read this instead of
// probing again, so the suite prints one consistent peer list.
const fs = require('fs');
const path = require('path');
const { spawnSync } = require('child_process');

// A BLAS library's soname and version, asked in a child process (bench/peers/gemm-peer.js): once
// loaded, OpenBLAS keeps worker threads in this process that halve a 2-thread FMA probe run later.
function blasInfo(peer) {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'gemm-peer.js'), JSON.stringify({ peer, cases: [] })], { encoding: 'utf8' });
  if (r.status !== 0) return null;
  const out = JSON.parse(r.stdout.trim().split('\n').pop());
  return out.missing ? null : out.info;
}

const INSTALL = {
  openblas: 'apt-get install libopenblas-dev',
  onednn: 'apt-get install libdnnl-dev g++',
  ort: 'ONNXRUNTIME_NODE_INSTALL=skip npm install --save-dev onnxruntime-node',
  tfjs: 'npm install --save-dev @tensorflow/tfjs @tensorflow/tfjs-backend-wasm',
  torch: 'python3 -m pip install torch (a CUDA build, on a machine with an NVIDIA GPU)',
};

function tryRequire(name) {
  try {
    return require(name);
  } catch (err) {
    return null;
  }
}

function packageVersion(name) {
  try {
    return require(`${name}/package.json`).version;
  } catch (err) {
    return null;
  }
}

/** The GPU rnnkit sees: { gpu: { name } } or { gpu: null, why }. */
function rnnkitGpu(rnnkit) {
  const cuda = rnnkit.backendInfo().cuda || {};
  if (!cuda.available || !cuda.devices || !cuda.devices.length) return { gpu: null, why: cuda.reason || 'no CUDA device' };
  const d = cuda.devices[0];
  return { gpu: { name: d.name || 'CUDA device 0' } };
}

/** PyTorch with CUDA through python3: { version, cudnn, device } or { missing }. */
function torchInfo() {
  const code = 'import json, torch; ok = torch.cuda.is_available(); ' +
    'print(json.dumps({"version": torch.__version__, "cuda": ok, "cudnn": torch.backends.cudnn.version() if ok else None, ' +
    '"device": torch.cuda.get_device_name(0) if ok else None}))';
  const r = spawnSync('python3', ['-c', code], { encoding: 'utf8', timeout: 120000 });
  if (r.error) return { missing: `python3 not found; ${INSTALL.torch}` };
  if (r.status !== 0) return { missing: `torch not importable by python3; ${INSTALL.torch}` };
  const info = JSON.parse(r.stdout.trim().split('\n').pop());
  if (!info.cuda) return { missing: `torch ${info.version} sees no CUDA device`, version: info.version };
  return info;
}

// The names `--skip` takes, and the peers each one covers.
const SKIP_NAMES = {
  openblas: ['openblas'], onednn: ['onednn'], ort: ['ort'], tfjs: ['tfjsCpu', 'tfjsWasm'],
  'tfjs-cpu': ['tfjsCpu'], 'tfjs-wasm': ['tfjsWasm'], torch: ['torch'],
};

/**
 * Finds every peer, but those named in `skip` (see SKIP_NAMES), which are reported as skipped.
 * Returns { key: { title, found, version?, line } }; line is what gets printed.
 */
function discover(rnnkit, { skip = [] } = {}) {
  const skipped = new Set(skip.flatMap((n) => SKIP_NAMES[n] || []));
  const peers = {};
  const add = (key, title, found, detail, install) => {
    if (skipped.has(key)) {
      peers[key] = { title, found: false, skipped: true, line: `${title}: skipped (--skip)` };
      return;
    }
    peers[key] = found ? { title, found: true, version: detail, line: `${title}: ${detail}` }
      : { title, found: false, line: `${title}: missing${detail ? ` (${detail})` : ''}: ${install}` };
  };
  const ob = skipped.has('openblas') ? null : blasInfo('openblas');
  add('openblas', 'OpenBLAS', !!ob, ob ? `${ob.soname} ${ob.detail || ''}`.trim() : null, INSTALL.openblas);
  const dn = skipped.has('onednn') ? null : blasInfo('dnnl');
  const header = ['/usr/include/dnnl.hpp', '/usr/include/oneapi/dnnl/dnnl.hpp'].some((p) => fs.existsSync(p));
  add('onednn', 'oneDNN', !!dn && header, dn ? `${dn.soname} ${dn.detail || ''}`.trim() + (header ? '' : ' (headers missing: no RNN peer)') : null,
    INSTALL.onednn);
  if (dn && !header) peers.onednn.gemmOnly = true;
  const ortVersion = tryRequire('onnxruntime-node') ? packageVersion('onnxruntime-node') : null;
  add('ort', 'onnxruntime-node', !!ortVersion, ortVersion, INSTALL.ort);
  const tfVersion = tryRequire.call(null, '@tensorflow/tfjs-core') ? packageVersion('@tensorflow/tfjs') : null;
  add('tfjsCpu', 'TensorFlow.js cpu', !!tfVersion, tfVersion, INSTALL.tfjs);
  const wasmVersion = tfVersion ? packageVersion('@tensorflow/tfjs-backend-wasm') : null;
  add('tfjsWasm', 'TensorFlow.js wasm', !!wasmVersion, wasmVersion, INSTALL.tfjs);
  const gpu = rnnkitGpu(rnnkit);
  peers.gpu = gpu.gpu ? { title: 'GPU', found: true, version: `${gpu.gpu.name}`, line: `GPU: ${gpu.gpu.name} (rnnkit CUDA flavor)` }
    : { title: 'GPU', found: false, line: `GPU: none: ${gpu.why}` };
  if (gpu.gpu && skipped.has('torch')) {
    peers.torch = { title: 'PyTorch/cuDNN', found: false, skipped: true, line: 'PyTorch/cuDNN: skipped (--skip)' };
  } else if (gpu.gpu) {
    const t = torchInfo();
    peers.torch = t.missing ? { title: 'PyTorch/cuDNN', found: false, line: `PyTorch/cuDNN: ${t.missing}` }
      : { title: 'PyTorch/cuDNN', found: true, version: `torch ${t.version}, cuDNN ${t.cudnn}, ${t.device}`, line: `PyTorch/cuDNN: torch ${t.version}, cuDNN ${t.cudnn} on ${t.device}` };
  } else {
    peers.torch = { title: 'PyTorch/cuDNN', found: false, line: 'PyTorch/cuDNN: not run (no GPU on this machine; it is the GPU peer)' };
  }
  return peers;
}

module.exports = { discover, INSTALL, SKIP_NAMES, torchInfo };
