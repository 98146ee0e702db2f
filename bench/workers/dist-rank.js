'use strict';
// One rank of bench family `dist` (bench/families/dist.js starts two): times rnnkit's allReduce
// on the sizes given, each sample between barriers so both ranks start together, and prints from
// rank 0 one JSON line { sizes: [{ bytes, ms: [samples] }], description }.
//   node dist-rank.js <repetitions> <MB> [<MB> ...]     (RANK, WORLD_SIZE, MASTER_* from the env)
const rk = require('../..');

async function main() {
  const reps = Number(process.argv[2]);
  const sizes = process.argv.slice(3).map(Number);
  const pg = await rk.distributed.initProcessGroup({ backend: process.env.BENCH_BACKEND || 'auto', timeoutMs: 120000 });
  const out = [];
  for (const mb of sizes) {
    const bytes = Math.round(mb * 1e6);
    const t = rk.full([bytes / 4], 1);
    await pg.allReduce(t); // warm-up: first-touch pages, socket buffers
    const ms = [];
    for (let r = 0; r < reps; r++) {
      await pg.barrier();
      const start = process.hrtime.bigint();
      await pg.allReduce(t);
      ms.push(Number(process.hrtime.bigint() - start) / 1e6);
    }
    out.push({ bytes, ms });
  }
  const description = pg.description;
  await pg.destroy();
  if (pg.rank === 0) process.stdout.write(JSON.stringify({ sizes: out, description }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`${e.code || ''} ${e.stack}\n`);
  process.exit(1);
});
