'use strict';
// A short soak (test/soak/run.js, `npm run soak` runs the full 3,000 steps): 300 training steps of
// the demo's model, smaller, in a child process; RSS may grow by at most 25% after the warm-up
// (a loose bound for a short run on a shared machine) and no native object may be left over.
const path = require('path');
const { spawnSync } = require('child_process');

describe('soak (short)', function () {
  this.timeout(600000);

  it('300 training steps: RSS flat after the warm-up, no native object left over', function () {
    // AddressSanitizer's quarantine keeps freed memory, so RSS says nothing there (LSan checks leaks).
    const maxGrowth = /asan/.test(process.env.LD_PRELOAD || '') ? '100000' : '25';
    const r = spawnSync(process.execPath, ['--expose-gc', path.join(__dirname, 'soak', 'run.js'), '--steps', '300', '--hidden', '32',
      '--embed', '16', '--seq', '16', '--batch', '8', '--every', '25', '--max-growth', maxGrowth], { encoding: 'utf8' });
    const line = r.stdout.split('\n').find((l) => l.startsWith('SOAK '));
    expect(line, `the soak ended without a summary:\n${r.stderr}`).to.be.a('string');
    const summary = JSON.parse(line.slice(5));
    expect(summary.problems).to.deep.equal([]);
    expect(r.status).to.equal(0);
    const rss = summary.samples.map((s) => (s.rss / 2 ** 20).toFixed(0)).join(' ');
    console.log(`      RSS MB every 25 steps: ${rss} (${summary.rssGrowthPercent.toFixed(1)}% after the warm-up), ${summary.seconds.toFixed(1)} s`);
  });
});
