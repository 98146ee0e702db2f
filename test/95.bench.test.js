'use strict';
// The benchmark suite's machinery (not its speed): summaries, ratio direction, the shape table's
// counts, the noise monitor, the published report, and a real quick run of one family end to end.
const { expect } = require('chai');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const harness = require('../bench/harness');
const shapes = require('../bench/shapes');
const report = require('../bench/report');
const { native } = require('../dist/native');

const root = path.join(__dirname, '..');

describe('bench suite', function () {
  it('summarizes samples as median, min, max and spread', function () {
    const s = harness.summarize([5, 1, 4, 2, 3]);
    expect(s).to.include({ median: 3, min: 1, max: 5 });
    expect(s.spread).to.be.closeTo(4 / 3, 1e-12);
    expect(harness.summarize([4, 2, 1, 3]).median).to.equal(2.5);
    expect(() => harness.summarize([])).to.throw(/no samples/);
  });

  it('reads every ratio as a speed ratio: > 1 means the first-named is faster', function () {
    expect(harness.speedup({ median: 2, min: 2, max: 2 }, { median: 6, min: 6, max: 6 })).to.equal(3);
    expect(harness.speedup(4, 2)).to.equal(0.5);
    expect(harness.speedup(undefined, 2)).to.equal(undefined);
  });

  it('prints a timing summary as median (min–max) and a single sample as such', function () {
    const text = harness.formatTable('t', [{ key: 'a', title: 'a', fmt: harness.fmt.ms }], [
      { a: { median: 2, min: 1.5, max: 3, samples: [1.5, 2, 3] } }, { a: { median: 7, min: 7, max: 7, samples: [7] } }]);
    expect(text).to.contain('2.000 (1.500–3.000)');
    expect(text).to.contain('7.000 (1 sample)');
  });

  it('stops timing a call that is over its budget after one sample', async function () {
    let calls = 0;
    const t = await harness.measure(() => {
      calls++;
      const end = Date.now() + 5;
      while (Date.now() < end);
    }, { warmup: 2, repeats: 5, budgetMs: 1 });
    expect(calls).to.equal(1);
    expect(t.budgetExceeded).to.equal(true);
    expect(t.samples).to.have.length(1);
  });

  it('counts FLOPs and bytes from one table, the same formulas for every peer', function () {
    const s1 = shapes.RECURRENT.S1;
    expect(shapes.recurrentFlops('lstm', s1)).to.equal(2 * 64 * 32 * 4 * 256 * (256 + 256));
    expect(shapes.recurrentFlops('lstm', s1, 'train')).to.equal(3 * 2 * 64 * 32 * 4 * 256 * 512);
    // S5: 2 layers, bidirectional: layer 1 reads both directions (2H).
    const s5 = shapes.RECURRENT.S5;
    expect(shapes.recurrentFlops('lstm', s5)).to.equal(2 * (2 * 32 * 16 * 4 * 512 * (512 + 512)) + 2 * (2 * 32 * 16 * 4 * 512 * (1024 + 512)));
    expect(shapes.recurrentFlops('gru', s1)).to.equal(2 * 64 * 32 * 3 * 256 * 512);
    expect(shapes.gemmFlops({ M: 2, N: 3, K: 4 })).to.equal(48);
    expect(shapes.rmsnormBytes({ rows: 2, cols: 8 }, 'forward')).to.equal(2 * 16 * 4);
    expect(shapes.rmsnormBytes({ rows: 2, cols: 8 }, 'backward')).to.equal(3 * 16 * 4);
    const names = shapes.shapeTable().map((r) => `${r.family} ${r.case}`);
    expect(new Set(names).size).to.equal(names.length);
    for (const fam of ['gemm', 'recurrent', 'rmsnorm', 'stepnet', 'train']) {
      expect(shapes.shapeTable().some((r) => r.family === fam && r.runs.includes('quick')), fam).to.equal(true);
    }
  });

  it('the noise monitor measures the machine and gives a verdict with reasons', function () {
    const m = harness.noiseMonitor(native(), 1);
    m.note(harness.summarize([1, 1.5, 3]));
    const n = m.finish();
    expect(['quiet', 'noisy']).to.include(n.verdict);
    expect(n.verdict === 'noisy').to.equal(n.reasons.length > 0);
    expect(n.fmaPeakStart).to.be.above(0);
    expect(n.worstSpread).to.be.closeTo(2 / 1.5, 1e-12);
    expect(n.medianSpread).to.be.above(0.15);
    expect(n.reasons.join(' ')).to.contain('spread');
    expect(harness.noiseLine(n)).to.match(/^machine: (quiet|NOISY)/);
  });

  it('a quick run of a family prints its tables, says how noisy the machine was, and report.js publishes them', function () {
    this.timeout(240000);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-bench-'));
    try {
      const r = spawnSync(process.execPath, [path.join(root, 'bench', 'run.js'), '--quick', '--json', '--only', 'stepnet'], {
        encoding: 'utf8', env: { ...process.env, RNNKIT_BENCH_RESULTS: out }, maxBuffer: 64 << 20,
      });
      expect(r.status, r.stderr).to.equal(0);
      const summary = JSON.parse(r.stdout);
      expect(summary.quick).to.equal(true);
      expect(r.stderr).to.contain('Peers on this machine:');
      expect(r.stderr).to.contain('Shapes (bench/shapes.js');
      expect(r.stderr).to.match(/machine: (quiet|NOISY)/);
      const fam = summary.families.stepnet;
      expect(fam.noise.verdict).to.be.oneOf(['quiet', 'noisy']);
      const row = fam.rows[0];
      expect(row.netFwd.median).to.be.within(row.netFwd.min, row.netFwd.max);
      expect(row.fwdRatio).to.be.closeTo(row.fusedFwd.median / row.netFwd.median, 1e-9);
      const saved = JSON.parse(fs.readFileSync(path.join(out, 'stepnet.json'), 'utf8'));
      expect(saved.tables.length).to.be.at.least(2);
      expect(fs.readFileSync(path.join(out, 'stepnet.svg'), 'utf8')).to.match(/^<svg/);
      const md = report.render('x\n<!-- results:start -->\nold\n<!-- results:end -->\ny\n', out);
      expect(md).to.not.contain('old');
      expect(md).to.contain('### stepnet');
      expect(md).to.contain(`| ${saved.tables[0].rows[0].join(' | ')} |`);
      expect(md.startsWith('x\n')).to.equal(true);
      expect(md.endsWith('<!-- results:end -->\ny\n')).to.equal(true);
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it('rejects an unknown family, option or peer with a usage line', function () {
    for (const argv of [['--only', 'nope'], ['--frobnicate'], ['--skip', 'nope'], ['--skip']]) {
      const r = spawnSync(process.execPath, [path.join(root, 'bench', 'run.js'), ...argv], { encoding: 'utf8' });
      expect(r.status, argv.join(' ')).to.equal(2);
      expect(r.stderr).to.match(/unknown (family|option)|--skip needs peer names/);
    }
  });

  it('runs a family without its peers when they are skipped, and says so', function () {
    this.timeout(240000);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-bench-'));
    try {
      const r = spawnSync(process.execPath, [path.join(root, 'bench', 'run.js'), '--quick', '--json', '--only', 'rmsnorm', '--skip', 'ort,tfjs'], {
        encoding: 'utf8', env: { ...process.env, RNNKIT_BENCH_RESULTS: out }, maxBuffer: 64 << 20,
      });
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('onnxruntime-node: skipped (--skip)');
      expect(r.stderr).to.contain('TensorFlow.js wasm: skipped (--skip)');
      const rows = JSON.parse(r.stdout).families.rmsnorm.rows;
      expect(rows.length).to.be.at.least(1);
      for (const row of rows) {
        expect(row).to.not.have.property('ortFwd');
        expect(row).to.not.have.property('tfjsWasmFwd');
        expect(row.fwdVs_js).to.be.closeTo(row.jsFwd.median / row.fwd.median, 1e-9);
        expect(row.fwdGBs).to.be.above(0);
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
