'use strict';
// Size limits before allocation (lib/args.ts): sizes in range, products without overflow, and the
// bytes a call would allocate checked against V8's largest typed array, the machine's (or the
// device's) memory and RNNKIT_MAX_ALLOC_BYTES before anything is allocated: ERR_RNNKIT_SHAPE or
// ERR_RNNKIT_OOM naming the argument and the bytes, at once. An allocation that fails anyway
// (V8's RangeError, the kernels' bad_alloc) is ERR_RNNKIT_OOM, and the process and the library
// go on working.
const path = require('path');
const { spawnSync } = require('child_process');
const {
  Recurrent, RMSNorm, Linear, RecurrentNetwork, StepNetBuilder, tensor, zeros, ones, full, matmulSync, crossEntropySync, nn,
} = rnnkit;

// "Well under a second": the cases of the issue take well below a millisecond each here; the bound
// leaves room for a loaded 2-core machine and the -O0 sanitizer build.
const QUICK = 250;

/** Runs fn, expects it to throw `code` within `ms` milliseconds, and returns the error. */
function fastCode(fn, code, ms = 1000) {
  const t0 = process.hrtime.bigint();
  const err = expectCode(fn, code);
  const took = Number(process.hrtime.bigint() - t0) / 1e6;
  expect(took, `${code} took ${took.toFixed(1)} ms`).to.be.below(ms);
  return err;
}

function withLimit(value, fn) {
  const before = process.env.RNNKIT_MAX_ALLOC_BYTES;
  process.env.RNNKIT_MAX_ALLOC_BYTES = value;
  try {
    return fn();
  } finally {
    if (before === undefined) delete process.env.RNNKIT_MAX_ALLOC_BYTES;
    else process.env.RNNKIT_MAX_ALLOC_BYTES = before;
  }
}

describe('limits: the cases of the issue throw a typed error at once', () => {
  it('new Recurrent with numLayers 2 ** 31', () => {
    const err = fastCode(() => new Recurrent({ mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2 ** 31 }), 'ERR_RNNKIT_ARG', QUICK);
    expect(err.message).to.match(/numLayers must be an integer in \[1, 1024\]/);
  });

  it('new Recurrent with hiddenSize 100000 (160 GB of weights)', () => {
    const err = fastCode(() => new Recurrent({ mode: 'lstm', inputSize: 3, hiddenSize: 100000 }), 'ERR_RNNKIT_OOM', QUICK);
    expect(err.message).to.contain('hiddenSize 100000').and.to.contain('160008000000 bytes');
  });

  it('new RMSNorm with size 2 ** 53', () => {
    expect(fastCode(() => new RMSNorm({ size: 2 ** 53 }), 'ERR_RNNKIT_ARG', QUICK).message).to.contain('size');
  });

  it('new RMSNorm with size [1e6, 1e6, 1e6]', () => {
    expect(fastCode(() => new RMSNorm({ size: [1e6, 1e6, 1e6] }), 'ERR_RNNKIT_SHAPE', QUICK).message).to.contain('too large');
  });

  it('new RMSNorm with the typo epsilon', () => {
    expect(fastCode(() => new RMSNorm({ size: 4, epsilon: 1e-3 }), 'ERR_RNNKIT_ARG', QUICK).message).to.match(/epsilon.*allowed: .*eps/);
  });

  it('new Linear with the typo bais', () => {
    expect(fastCode(() => new Linear({ inFeatures: 2, outFeatures: 2, bais: false }), 'ERR_RNNKIT_ARG', QUICK).message)
      .to.match(/unknown key bais in Linear options \(allowed: .*bias/);
    expect(fastCode(() => new nn.Linear({ inFeatures: 2, outFeatures: 2, bais: false }), 'ERR_RNNKIT_ARG', QUICK).message).to.contain('bais');
  });

  it('the same sizes through the nn modules', () => {
    expect(fastCode(() => new nn.LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2 ** 31 }), 'ERR_RNNKIT_ARG', QUICK).message).to.contain('numLayers');
    expect(fastCode(() => new nn.LSTM({ inputSize: 3, hiddenSize: 100000 }), 'ERR_RNNKIT_OOM', QUICK).message).to.contain('160008000000 bytes');
    expect(fastCode(() => new nn.RMSNorm({ normalizedShape: [1e6, 1e6, 1e6] }), 'ERR_RNNKIT_SHAPE', QUICK).message).to.contain('too large');
    fastCode(() => new nn.RMSNorm({ normalizedShape: 2 ** 53 }), 'ERR_RNNKIT_ARG', QUICK);
    fastCode(() => new nn.RMSNorm({ normalizedShape: 4, epsilon: 1e-3 }), 'ERR_RNNKIT_ARG', QUICK);
  });

  it('numLayers just past the range, and 1e6, are refused the same way', () => {
    for (const n of [1025, 1e6, 2 ** 32, 2 ** 53, -(2 ** 31)]) {
      fastCode(() => new Recurrent({ mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: n }), 'ERR_RNNKIT_ARG', QUICK);
    }
  });
});

describe('limits: sizes and bytes before allocation', () => {
  it('tensors: shapes beyond the safe integers, beyond V8, beyond memory', () => {
    fastCode(() => zeros([2 ** 53]), 'ERR_RNNKIT_SHAPE');
    fastCode(() => ones([2 ** 30, 2 ** 30, 2 ** 30]), 'ERR_RNNKIT_SHAPE');
    fastCode(() => zeros([-1]), 'ERR_RNNKIT_SHAPE');
    fastCode(() => zeros([1.5]), 'ERR_RNNKIT_SHAPE');
    const err = fastCode(() => full([1e6, 1e6], 1), 'ERR_RNNKIT_OOM');
    expect(err.message).to.contain('[1000000, 1000000]').and.to.contain('4000000000000 bytes');
    fastCode(() => tensor(new Float32Array(4), [2, 2 ** 52]), 'ERR_RNNKIT_SHAPE');
    expect(zeros([0, 2 ** 40]).size).to.equal(0);
  });

  it('Linear, matmul and losses size their outputs first', () => {
    fastCode(() => new Linear({ inFeatures: 2 ** 31, outFeatures: 2 ** 31 }), 'ERR_RNNKIT_SHAPE');
    expect(fastCode(() => new Linear({ inFeatures: 2 ** 20, outFeatures: 2 ** 20 }), 'ERR_RNNKIT_OOM').message).to.contain('the weight');
    const a = zeros([2 ** 20, 1]);
    expect(fastCode(() => matmulSync(a, zeros([1, 2 ** 20])), 'ERR_RNNKIT_OOM').message).to.contain('out [1048576, 1048576]');
    withLimit('1K', () => fastCode(() => crossEntropySync(zeros([64, 8]), new Int32Array(64)), 'ERR_RNNKIT_OOM'));
  });

  it('Recurrent forward and backward count their outputs, the saved activations and the kernels\' memory', () => {
    const op = new Recurrent({ mode: 'lstm', inputSize: 1, hiddenSize: 512, numLayers: 8, device: 'cpu', seed: 1 });
    const x = zeros([1e5, 100, 1]);
    const err = fastCode(() => op.forwardSync(x, { training: true }), 'ERR_RNNKIT_OOM');
    expect(err.message).to.match(/^forward: y \[100000, 100, 512\] would take 20480000000 bytes/);
    const small = op.forwardSync(zeros([2, 1, 1]), { training: true });
    withLimit('1M', () => {
      expect(fastCode(() => op.backwardSync(small.saved, {}), 'ERR_RNNKIT_OOM').message).to.contain('RNNKIT_MAX_ALLOC_BYTES');
    });
    expect(op.backwardSync(small.saved, {}).dx.size).to.equal(2);
  });

  it('RMSNorm counts its parameters and outputs', () => {
    withLimit('64K', () => {
      expect(fastCode(() => new RMSNorm({ size: 10000 }), 'ERR_RNNKIT_OOM').message).to.contain('gamma [10000]');
      const norm = new RMSNorm({ size: 8 });
      fastCode(() => norm.forwardSync(zeros([4096, 8])), 'ERR_RNNKIT_OOM');
    });
  });

  it('step nets size their workspace natively before the forward', () => {
    const b = new StepNetBuilder();
    b.state('h', 1024);
    b.link('h_prev', 'h');
    b.tanh('h_t', 'h_prev');
    b.link('h_t', 'h', { offset: 1 });
    b.alias('y', 'h', -1);
    const net = new RecurrentNetwork(b);
    const err = fastCode(() => net.forwardSync({ h: zeros([4096, 1024]) }, { steps: 2 ** 20 }), 'ERR_RNNKIT_OOM');
    fastCode(() => net.forwardSync({ h: zeros([4096, 1024]) }, { steps: 2 ** 31 }), 'ERR_RNNKIT_SHAPE');
    expect(err.message).to.match(/workspace of 1048576 steps, batch 4096/);
    expect(net.forwardSync({ h: zeros([2, 1024]) }, { steps: 3 }).outputs.y.shape).to.deep.equal([1, 2, 1024]);
  });
});

describe('limits: RNNKIT_MAX_ALLOC_BYTES', () => {
  it('caps what one call allocates, with K/M/G/T suffixes, and names itself', () => {
    withLimit('2K', () => {
      expect(zeros([512]).size).to.equal(512);
      const err = fastCode(() => zeros([513]), 'ERR_RNNKIT_OOM');
      expect(err.message).to.contain('2052 bytes').and.to.contain('2048 bytes').and.to.contain('RNNKIT_MAX_ALLOC_BYTES');
      fastCode(() => new Recurrent({ mode: 'gru', inputSize: 16, hiddenSize: 16, device: 'cpu' }), 'ERR_RNNKIT_OOM');
    });
    withLimit('1m', () => expect(zeros([2 ** 18]).size).to.equal(2 ** 18));
    withLimit('1GiB', () => expect(zeros([4]).size).to.equal(4));
  });

  it('a value that is not a byte count is refused, not ignored', () => {
    for (const v of ['lots', '-5', '0', '1.5G', '8X']) withLimit(v, () => fastCode(() => zeros([1]), 'ERR_RNNKIT_ARG'));
  });
});

describe('limits: an allocation that fails anyway', function () {
  this.timeout(120000);

  it('V8\'s failure and the kernels\' are ERR_RNNKIT_OOM, and the process goes on computing', function () {
    // AddressSanitizer reserves terabytes of address space: a virtual-memory limit cannot apply there.
    if (/asan/.test(process.env.LD_PRELOAD || '')) this.skip();
    const script = `
      const rk = require(${JSON.stringify(path.join(__dirname, '..'))});
      const codes = [];
      const attempt = (fn) => { try { fn(); codes.push('none'); } catch (e) { codes.push(e.code); } };
      attempt(() => rk.zeros([2 ** 29, 2]));
      const op = new rk.Recurrent({ mode: 'lstm', inputSize: 1, hiddenSize: 64, seed: 1, device: 'cpu' });
      attempt(() => op.forwardSync(rk.zeros([2 ** 18, 16, 1]), { training: true }));
      attempt(() => op.forwardSync(rk.zeros([2 ** 18, 16, 1])));
      const c = rk.matmulSync(rk.tensor([1, 2, 3, 4], [2, 2]), rk.tensor([5, 6, 7, 8], [2, 2])).data;
      const y = op.forwardSync(rk.ones([3, 2, 1])).y.size;
      process.stdout.write(JSON.stringify({ codes, c: Array.from(c), y }));`;
    // About 2.3 GiB of address space on top of what node maps at start.
    const r = spawnSync('bash', ['-c', 'ulimit -v 3000000 && exec "$0" -e "$1"', process.execPath, script], { encoding: 'utf8' });
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(r.stdout);
    expect(out.codes).to.deep.equal(['ERR_RNNKIT_OOM', 'ERR_RNNKIT_OOM', 'ERR_RNNKIT_OOM']);
    expect(out.c).to.deep.equal([19, 22, 43, 50]);
    expect(out.y).to.equal(3 * 2 * 64);
  });
});
