'use strict';
// Child process of bench/families/gemm.js: times one peer GEMM library (openblas | dnnl) on the
// cases it is given and prints one JSON line. A child of its own because OpenBLAS reads
// OPENBLAS_CORETYPE once, when it loads: the parent runs it once with and once without.
// Usage: node gemm-peer.js '{"peer":"openblas","cases":[{"name","M","N","K","transA","transB","threads"}],"repeats":5,"minMs":30}'
const { native } = require('../../dist/native');

function main() {
  const job = JSON.parse(process.argv[2]);
  const binding = native();
  const info = binding.peerInfo(job.peer);
  if (!info) {
    process.stdout.write(JSON.stringify({ missing: true }) + '\n');
    return;
  }
  const results = job.cases.map((c) => {
    const t = binding.benchPeerSgemm(job.peer, c.M, c.N, c.K, c.transA, c.transB, c.threads, job.repeats, job.minMs);
    return { name: c.name, threads: c.threads, ...t };
  });
  process.stdout.write(JSON.stringify({ info, results }) + '\n');
}

main();
