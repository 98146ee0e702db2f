'use strict';
// mocha's spec reporter plus one closing line, `N passed, N failed, N skipped`, counted by mocha
// itself (failures in hooks included), which .ci/run and CI read.
const Mocha = require('mocha');

class SummaryReporter extends Mocha.reporters.Spec {
  constructor(runner, options) {
    super(runner, options);
    runner.once('end', () => {
      const s = runner.stats;
      process.stdout.write(`\n${s.passes} passed, ${s.failures} failed, ${s.pending} skipped\n`);
    });
  }
}

module.exports = SummaryReporter;
