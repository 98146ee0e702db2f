'use strict';
// Host memory kept for reuse (lib/host-cache.ts, native/kernels/host_cache.h): the native
// working-memory cache and the pool of released saved-activation arrays. The whole suite runs with
// both NaN-poisoned (test/00.setup.js); here: the figures backendInfo() reports, reuse across
// calls, releaseCachedMemory(), a release() during an async backward, and a case big enough for
// the cached (≥ 1 MiB) blocks checked against the float64 reference with recycled memory.
const { Recurrent } = require('../dist/recurrent');
const { savedPool, setHostCacheLimit } = require('../dist/host-cache');
const ref = require('./reference/recurrent');
const { randomFor } = require('./support/random');
const { expectClose } = require('./support/close');

const f32 = (a) => Float32Array.from(a);
const cache = () => rnnkit.backendInfo().hostCache;

// LSTM, bidirectional, T16 B32 H128: its gate buffers (16·32·512 floats = 1 MiB) go through the cache.
function bigCase(rng) {
  const T = 16, B = 32, H = 128, I = 48;
  const cfg = { mode: 'lstm', inputSize: I, hiddenSize: H, numLayers: 1, bidirectional: true };
  const op = new Recurrent(cfg);
  const weights = f32(rng.array(op.weights.size, -0.3, 0.3));
  op.weights.data.set(weights);
  const x = f32(rng.array(T * B * I));
  const seqLengths = Int32Array.from({ length: B }, (_, b) => (b === 3 ? 0 : 1 + ((b * 7) % T)));
  const dy = f32(rng.array(T * B * 2 * H));
  return { T, B, H, I, cfg, op, weights, x, seqLengths, dy };
}

function checkAgainstReference(k, fwd, g) {
  const inputs = { x: k.x, seqLengths: k.seqLengths, weights: k.weights, T: k.T, B: k.B, dropoutOn: false };
  const want = ref.recurrentForward({ ...k.cfg, seed: 0 }, inputs);
  expectClose(fwd.y.data, want.y, { rel: 1e-5, scale: 'norm', what: 'y' });
  const wantG = ref.recurrentBackward({ ...k.cfg, seed: 0 }, inputs, { dy: k.dy });
  expectClose(g.dx.data, wantG.dx, { rel: 1e-4, scale: 'norm', what: 'dx' });
  expectClose(g.dweights.data, wantG.dweights, { rel: 1e-4, scale: 'norm', what: 'dweights' });
}

describe('host memory cache', function () {
  this.timeout(60000);
  // Sanitizer builds keep nothing by default (a use after free must show); these tests set 1 GiB.
  let initialLimit;
  before(() => {
    initialLimit = cache().limitBytes;
    setHostCacheLimit(2 ** 30);
  });
  after(() => setHostCacheLimit(initialLimit));
  afterEach(() => rnnkit.releaseCachedMemory());

  it('backendInfo().hostCache reports the native cache and the saved pool; the default limit is 1024 MiB (0 in sanitizer builds)', function () {
    expect(initialLimit).to.equal(process.env.RNNKIT_HOST_CACHE_MB ? Number(process.env.RNNKIT_HOST_CACHE_MB) * 2 ** 20
      : /asan|sanitiz/i.test(rnnkit.backendInfo().addonPath) ? 0 : 2 ** 30);
    const c = cache();
    for (const key of ['cachedBytes', 'limitBytes', 'inUseBytes', 'hits', 'misses', 'savedPoolBytes']) {
      expect(c[key], key).to.be.a('number');
      expect(Number.isInteger(c[key]) && c[key] >= 0, key).to.equal(true);
    }
    expect(c.limitBytes).to.equal(2 ** 30);
  });

  it('reuses working memory and released saved arrays, and checks against the float64 reference with recycled memory', function () {
    const k = bigCase(randomFor('host cache reuse'));
    const xt = rnnkit.tensor(k.x, [k.T, k.B, k.I]);
    const run = () => {
      const fwd = k.op.forwardSync(xt, { training: true, seqLengths: k.seqLengths });
      const g = k.op.backwardSync(fwd.saved, { dy: rnnkit.tensor(k.dy, fwd.y.shape) });
      return { fwd, g };
    };
    rnnkit.releaseCachedMemory();
    const first = run();
    expect(cache().savedPoolBytes, 'nothing released yet').to.equal(0);
    expect(cache().cachedBytes, 'the calls returned their blocks').to.be.greaterThan(0);
    first.fwd.saved.release();
    const bytes = cache().savedPoolBytes;
    expect(bytes, 'the released array is pooled').to.be.at.least(4 * k.op.savedSize(k.T, k.B));
    const hits = cache().hits;
    const second = run();
    expect(cache().hits, 'the second call reused blocks').to.be.greaterThan(hits);
    expect(cache().savedPoolBytes, 'the next forward took the pooled array').to.equal(0);
    checkAgainstReference(k, second.fwd, second.g);
    second.fwd.saved.release();
    const pooled = cache().savedPoolBytes, cached = cache().cachedBytes;
    expect(rnnkit.releaseCachedMemory()).to.equal(pooled + cached);
    expect(cache().cachedBytes).to.equal(0);
    expect(cache().savedPoolBytes).to.equal(0);
    k.op.dispose();
  });

  it('a release() during an async backward recycles the activations only after the backward, whose result stays right', async function () {
    const k = bigCase(randomFor('host cache release in flight'));
    const xt = rnnkit.tensor(k.x, [k.T, k.B, k.I]);
    const fwd = k.op.forwardSync(xt, { training: true, seqLengths: k.seqLengths });
    rnnkit.releaseCachedMemory();
    const pending = k.op.backward(fwd.saved, { dy: rnnkit.tensor(k.dy, fwd.y.shape) });
    fwd.saved.release();
    expect(cache().savedPoolBytes, 'not pooled while the backward reads it').to.equal(0);
    // A forward meanwhile must get its own array, not the one the backward reads.
    const other = k.op.forwardSync(rnnkit.tensor(f32(k.x.map((v) => -v)), [k.T, k.B, k.I]), { training: true });
    const g = await pending;
    expect(cache().savedPoolBytes, 'pooled once the backward finished').to.be.at.least(4 * k.op.savedSize(k.T, k.B));
    checkAgainstReference(k, fwd, g);
    other.saved.release();
    k.op.dispose();
  });

  it('a saved released twice or never released is harmless; the pool hands out exact sizes and keeps to the limit', function () {
    rnnkit.releaseCachedMemory();
    savedPool.give(new Float32Array(1000));
    expect(savedPool.take(1200), 'too small').to.equal(null);
    expect(savedPool.take(600), 'wastes over a quarter').to.equal(null);
    const a = savedPool.take(900);
    expect(a.length).to.equal(900);
    expect(Number.isNaN(a[0]) && Number.isNaN(a[899]), 'poisoned in tests').to.equal(true);
    savedPool.give(a);
    expect(cache().savedPoolBytes, 'the whole buffer comes back').to.equal(4000);
    const k = bigCase(randomFor('host cache twice'));
    const fwd = k.op.forwardSync(rnnkit.tensor(k.x, [k.T, k.B, k.I]), { training: true });
    fwd.saved.release();
    const once = cache().savedPoolBytes;
    fwd.saved.release();
    expect(cache().savedPoolBytes).to.equal(once);
    expectCode(() => k.op.backwardSync(fwd.saved, { dy: rnnkit.tensor(k.dy, fwd.y.shape) }), 'ERR_RNNKIT_DISPOSED');
    k.op.dispose();
  });
});
