'use strict';
// One rank of bench family `dist`'s training-step figures (bench/families/dist.js starts two):
// the demo's model (Embedding -> 2-layer LSTM 128 -> Linear) trained on random characters, steps
// timed between barriers, with the gradients averaged in one of three ways:
//   none   no communication (both ranks still compute side by side: the compute-only step)
//   after  the whole backward, then the buckets' all-reduces (no overlap)
//   ddp    nn.DistributedDataParallel: each bucket's all-reduce starts as soon as it is complete
//   node dist-train.js <mode> <bucketMB> <steps>     (RANK, WORLD_SIZE, MASTER_* from the env)
// Prints from rank 0 one JSON line { ms: [step times], waitMs: [...], gradientBytes, buckets }:
// waitMs is the step's exposed communication, from the moment the backward produced its last
// gradient (the embedding's) to the moment the averaged gradients are all in.
const rk = require('../..');

const V = 81;
const T = 32;
const B = 16;

class CharLM extends rk.nn.Module {
  constructor() {
    super();
    this.embed = new rk.nn.Embedding({ numEmbeddings: V, embeddingDim: 64, seed: 1 });
    this.rnn = new rk.nn.LSTM({ inputSize: 64, hiddenSize: 128, numLayers: 2, seed: 2 });
    this.head = new rk.nn.Linear({ inFeatures: 128, outFeatures: V, seed: 3 });
  }

  async forward(ids) {
    const x = await this.embed.forward(ids, [T, B]);
    return this.head.forward((await this.rnn.forward(x)).y);
  }
}

// The gradients in flat buckets of `bucketMB`, reverse parameter order (as DDP groups them).
function flatBuckets(params, bucketMB) {
  const buckets = [];
  let current = [];
  let bytes = 0;
  for (const p of params.slice().reverse()) {
    if (current.length && bytes + p.size * 4 > bucketMB * 1e6) {
      buckets.push(current);
      current = [];
      bytes = 0;
    }
    current.push(p);
    bytes += p.size * 4;
  }
  if (current.length) buckets.push(current);
  return buckets.map((ps) => ({ ps, flat: rk.zeros([ps.reduce((n, p) => n + p.size, 0)]) }));
}

async function main() {
  const [mode, bucketMB, steps] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const pg = await rk.distributed.initProcessGroup({ backend: 'gloo', timeoutMs: 120000 });
  const model = new CharLM();
  const ddp = mode === 'ddp' ? new rk.nn.DistributedDataParallel(model, { processGroup: pg, bucketMB }) : null;
  if (ddp) await ddp.ready;
  const params = model.parameters();
  const buckets = flatBuckets(params, bucketMB);
  const opt = new rk.SGD(params, { lr: 0.1 });
  const rng = new rk.Rng(7 + pg.rank);
  const ids = new Int32Array(T * B);
  const targets = new Int32Array(T * B);
  const ms = [];
  const waitMs = [];
  let lastGradient = 0n;
  model.embed.weight.registerPostAccumulateGradHook(() => {
    lastGradient = process.hrtime.bigint();
  });
  for (let step = 0; step < steps + 2; step++) {
    for (let i = 0; i < ids.length; i++) {
      ids[i] = rng.int(V);
      targets[i] = (ids[i] * 7 + 3) % V;
    }
    await pg.barrier();
    const start = process.hrtime.bigint();
    const logits = await (ddp || model).forward(ids);
    const loss = await rk.nn.crossEntropy(logits, targets);
    await loss.backward();
    if (mode === 'after') {
      for (const b of buckets) {
        let off = 0;
        for (const p of b.ps) {
          b.flat.data.set(p.grad.data, off);
          off += p.size;
        }
        await pg.allReduce(b.flat, { op: 'avg' });
        off = 0;
        for (const p of b.ps) {
          p.grad.data.set(b.flat.data.subarray(off, off + p.size));
          off += p.size;
        }
      }
    }
    const averaged = process.hrtime.bigint();
    await opt.step();
    opt.zeroGrad();
    if (step >= 2) {
      ms.push(Number(process.hrtime.bigint() - start) / 1e6);
      waitMs.push(mode === 'none' ? 0 : Number(averaged - lastGradient) / 1e6);
    }
  }
  await pg.destroy();
  const gradientBytes = params.reduce((n, p) => n + p.size * 4, 0);
  if (pg.rank === 0) process.stdout.write(JSON.stringify({ ms, waitMs, gradientBytes, buckets: buckets.length }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.code || ''} ${e.stack}\n`);
  process.exit(1);
});
