'use strict';
// Device choice and CPU fallback. Here (no GPU) CUDA reports unavailable with a reason and every
// op runs on the CPU; on a GPU box the @gpu tests exercise the device path end to end.
const { tensor, zeros, backendInfo } = rnnkit;
const { native } = require('../dist/native');

describe('backend and devices', () => {
  it('backendInfo says which flavor loaded, the ISA path and the CUDA state', () => {
    const info = backendInfo();
    expect(info.flavor).to.be.oneOf(['cpu', 'cuda']);
    expect(info.addonPath).to.be.a('string').and.match(/\.node$/);
    const paths = process.arch === 'arm64' ? ['portable', 'neon'] : ['portable', 'avx2', 'avx512'];
    expect(info.isa).to.be.oneOf(paths);
    expect(info.detectedIsa).to.be.oneOf(paths);
    expect(info.availableIsas[0]).to.equal('portable');
    expect(info.availableIsas[info.availableIsas.length - 1]).to.equal(info.detectedIsa);
    if (process.arch === 'arm64') expect(info.detectedIsa).to.equal('neon');
    expect(info.numThreads).to.be.at.least(1);
    expect(info.napiVersion).to.equal(9);
    expect(info.cuda.built).to.equal(info.flavor === 'cuda');
    if (info.cuda.available) {
      expect(info.cuda.reason).to.equal(null);
      expect(info.cuda.devices.length).to.be.at.least(1);
      expect(info.defaultDevice).to.equal('cuda:0');
    } else {
      expect(info.cuda.reason).to.be.a('string').and.not.empty;
      expect(info.defaultDevice).to.equal('cpu');
    }
  });

  it('falls back to the CPU for device "auto" and explains a missing CUDA device', function () {
    if (cudaAvailable()) this.skip();
    const t = tensor([1, 2], [2], { device: 'auto' });
    expect(t.device).to.equal('cpu');
    const err = expectCode(() => tensor([1], [1], { device: 'cuda' }), 'ERR_RNNKIT_DEVICE');
    expect(err.message).to.contain(backendInfo().cuda.reason);
    expectCode(() => zeros([2]).to('cuda:0'), 'ERR_RNNKIT_DEVICE');
  });

  it('rejects malformed device strings', () => {
    for (const d of ['gpu', 'cuda:', 'cuda:-1', 'cuda:x', 'CPU ', 42]) {
      expectCode(() => tensor([1], [1], { device: d }), 'ERR_RNNKIT_ARG');
    }
  });

  it('ISA paths can be forced for tests and restored', () => {
    const info = backendInfo();
    for (const path of ['portable', 'avx2', 'avx512', 'neon']) {
      if (info.availableIsas.includes(path)) expect(native().setIsa(path)).to.equal(path);
      else expectCode(() => native().setIsa(path), 'ERR_RNNKIT_ARG');
    }
    native().setIsa(info.detectedIsa);
  });

  it('the compute pool can be resized and reports its size', () => {
    const before = rnnkit.numThreads();
    expect(rnnkit.setNumThreads(1)).to.equal(1);
    expect(rnnkit.numThreads()).to.equal(1);
    expect(rnnkit.setNumThreads(3)).to.equal(3);
    expect(rnnkit.setNumThreads(0)).to.equal(before);
    expectCode(() => rnnkit.setNumThreads(1.5), 'ERR_RNNKIT_ARG');
  });

  it('honours RNNKIT_NUM_THREADS and RNNKIT_DEVICE=cpu in a fresh process', () => {
    const { execFileSync } = require('child_process');
    const out = execFileSync(process.execPath, ['-e',
      "const r=require('./dist');const i=r.backendInfo();console.log(JSON.stringify([i.numThreads,i.flavor,i.defaultDevice]))"],
    { env: { ...process.env, RNNKIT_NUM_THREADS: '3', RNNKIT_DEVICE: 'cpu' }, cwd: require('path').join(__dirname, '..') });
    expect(JSON.parse(out.toString())).to.deep.equal([3, 'cpu', 'cpu']);
  });
});

describe('CUDA device path @gpu', function () {
  before(function () {
    skipWithoutGpu(this);
  });

  it('round-trips a tensor through device memory', async () => {
    const n = 100003;
    const host = new Float32Array(n).map((_, i) => Math.sin(i));
    const d = tensor(host, [n], { device: 'cuda' });
    expect(d.device).to.equal('cuda:0');
    expectCode(() => d.data, 'ERR_RNNKIT_DEVICE');
    const back = await d.read();
    expect(back).to.deep.equal(host);
    expect(d.readSync()).to.deep.equal(host);
    const c = d.to('cpu');
    expect(c.device).to.equal('cpu');
    expect(c.data).to.deep.equal(host);
    d.dispose();
    expectCode(() => d.readSync(), 'ERR_RNNKIT_DISPOSED');
  });

  it('runs the saxpy kernel and matches the CPU', async () => {
    const n = 1 << 20;
    const x = new Float32Array(n).map(() => Math.random() - 0.5);
    const y = new Float32Array(n).map(() => Math.random() - 0.5);
    const dx = tensor(x, [n], { device: 'cuda' });
    const dy = tensor(y, [n], { device: 'cuda' });
    await native().saxpy(2.5, dx.deviceBuffer, dy.deviceBuffer, true);
    const got = await dy.read();
    for (let i = 0; i < n; i += 997) {
      const want = Math.fround(2.5 * x[i] + y[i]);
      expect(Math.abs(got[i] - want)).to.be.at.most(1e-6 * (Math.abs(want) + 1));
    }
    dx.dispose();
    dy.dispose();
  });

  it('reuses freed blocks through the caching allocator', () => {
    const before = native().deviceMemory(0);
    const a = zeros([1 << 18], { device: 'cuda' });
    const used = native().deviceMemory(0).used;
    expect(used).to.be.at.least(before.used + (1 << 20));
    a.dispose();
    const after = native().deviceMemory(0);
    expect(after.used).to.equal(before.used);
    expect(after.cached).to.be.at.least(1 << 20);
    native().releaseCache(0);
    expect(native().deviceMemory(0).cached).to.equal(0);
  });

  it('turns out-of-memory into ERR_RNNKIT_OOM and stays healthy', () => {
    const err = expectCode(() => new (native().DeviceBuffer)(0, 2 ** 45), 'ERR_RNNKIT_OOM');
    expect(err.message).to.match(/out of memory/);
    const t = tensor([1, 2, 3], [3], { device: 'cuda' });
    expect(Array.from(t.readSync())).to.deep.equal([1, 2, 3]);
    t.dispose();
  });
});
