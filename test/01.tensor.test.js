'use strict';
const { tensor, zeros, ones, full, Tensor } = rnnkit;

describe('Tensor', () => {
  it('wraps a Float32Array without copying on the CPU', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const t = tensor(data, [2, 3]);
    expect(t.shape).to.deep.equal([2, 3]);
    expect(t.device).to.equal('cpu');
    expect(t.size).to.equal(6);
    expect(t.dtype).to.equal('float32');
    expect(t.data).to.equal(data);
    data[0] = 42;
    expect(t.readSync()[0]).to.equal(42);
  });

  it('converts number[] and defaults the shape to 1-D', () => {
    const t = tensor([1.5, -2]);
    expect(t.shape).to.deep.equal([2]);
    expect(Array.from(t.data)).to.deep.equal([1.5, -2]);
  });

  it('read() and readSync() return copies', async () => {
    const t = tensor([1, 2, 3], [3]);
    const a = t.readSync();
    const b = await t.read();
    expect(Array.from(a)).to.deep.equal([1, 2, 3]);
    expect(Array.from(b)).to.deep.equal([1, 2, 3]);
    a[0] = 9;
    expect(t.data[0]).to.equal(1);
  });

  it('zeros, ones and full', () => {
    expect(Array.from(zeros([2, 2]).data)).to.deep.equal([0, 0, 0, 0]);
    expect(Array.from(ones([3]).data)).to.deep.equal([1, 1, 1]);
    expect(Array.from(full([2], 7).data)).to.deep.equal([7, 7]);
    expect(zeros([0, 5]).size).to.equal(0);
  });

  it('reshape makes a view sharing storage', () => {
    const t = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
    const v = t.reshape([3, 2]);
    expect(v.shape).to.deep.equal([3, 2]);
    v.data[5] = -1;
    expect(t.data[5]).to.equal(-1);
    expectCode(() => t.reshape([4, 2]), 'ERR_RNNKIT_SHAPE');
    v.dispose();
    expect(t.disposed).to.equal(true);
  });

  it('to("cpu") on a CPU tensor is the tensor itself; clone copies', () => {
    const t = tensor([1, 2], [2]);
    expect(t.to('cpu')).to.equal(t);
    const c = t.clone();
    c.data[0] = 5;
    expect(t.data[0]).to.equal(1);
  });

  it('rejects bad shapes and data with typed errors', () => {
    expectCode(() => tensor([1, 2, 3], [2, 2]), 'ERR_RNNKIT_SHAPE');
    expectCode(() => tensor([1, 2], [-1, -2]), 'ERR_RNNKIT_SHAPE');
    expectCode(() => tensor([1, 2], [2.5]), 'ERR_RNNKIT_SHAPE');
    expectCode(() => tensor(new Float64Array(4), [4]), 'ERR_RNNKIT_DTYPE');
    expectCode(() => tensor('abc', [3]), 'ERR_RNNKIT_DTYPE');
    expectCode(() => tensor([1, 'x'], [2]), 'ERR_RNNKIT_DTYPE');
    expectCode(() => zeros('3'), 'ERR_RNNKIT_SHAPE');
    expectCode(() => tensor([1], [1], { device: 'tpu' }), 'ERR_RNNKIT_ARG');
  });

  it('use after dispose throws ERR_RNNKIT_DISPOSED; dispose is idempotent', async () => {
    const t = tensor([1, 2, 3]);
    t.dispose();
    t.dispose();
    expect(t.disposed).to.equal(true);
    expectCode(() => t.readSync(), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => t.data, 'ERR_RNNKIT_DISPOSED');
    expectCode(() => t.to('cpu'), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => t.reshape([3]), 'ERR_RNNKIT_DISPOSED');
    await expectReject(t.read(), 'ERR_RNNKIT_DISPOSED');
    expectCode(() => rnnkit.matmulSync(tensor([1], [1, 1]), t), 'ERR_RNNKIT_DISPOSED');
  });

  it('supports `using` through Symbol.dispose', () => {
    const t = tensor([1]);
    expect(typeof t[Symbol.dispose]).to.equal('function');
    t[Symbol.dispose]();
    expect(t.disposed).to.equal(true);
  });

  it('is an instance of the exported Tensor class', () => {
    expect(tensor([1])).to.be.instanceOf(Tensor);
    expect(String(tensor([1, 2], [1, 2]))).to.equal('Tensor(float32, [1, 2], cpu)');
  });
});
