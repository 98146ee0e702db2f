'use strict';
// The public-API fuzz: a table of every exported function, constructor, method and accessor of
// rnnkit (test/fuzz/surface.js lists them from the type declarations; 93.api-fuzz holds this
// table to that list), each with a generator of valid arguments. A call takes valid arguments
// and breaks some of them with the hostile values of test/fuzz/hostile.js: a whole argument
// replaced, or deep inside an options object or a list (a value replaced, a key dropped, an
// unknown key added, a getter that throws, a Proxy), so that the checks far from the entry are
// reached too. The contract under test: a call returns, or throws (rejects with) an RnnkitError
// whose code is ERR_RNNKIT_*; only the fuzz's own callbacks (tbptt's head, input, onSegment) may
// pass their HostileError through.
const fs = require('fs');
const os = require('os');
const path = require('path');
const { makeHostile, HostileError } = require('./hostile');
const { addModelContext, closeModelContext, modelTargets, distributedTargets } = require('./targets-nn');

const MODES = ['lstm', 'gru', 'rnn_tanh', 'rnn_relu'];

/** Valid objects the targets share (operator objects, parameters, checkpoint folders) and helpers. */
function makeContext(rk, rng) {
  const h = makeHostile(rng, [
    () => ctx.t([rng.int(0, 3), rng.int(1, 4)]), () => ctx.disposed(), () => ctx.t([]), () => ctx.t([2, 0, 3]),
    () => ctx.onDetached(), () => ctx.pick(Object.values(ctx.ops)), () => ctx.pick(ctx.optimizers),
    () => ctx.trainingSaved(), () => new rk.Rng(3), () => new rk.StepNetBuilder(), () => ctx.leaf([2]), () => ctx.loss(),
    () => ctx.module(), () => ctx.group,
  ]);
  const ctx = {
    rk, rng, h,
    pick: (list) => list[rng.int(0, list.length - 1)],
    f32: (n, lo = -1, hi = 1) => Float32Array.from(rng.array(n, lo, hi)),
    i32: (n, lo, hi) => Int32Array.from({ length: n }, () => rng.int(lo, hi)),
    /** `n` ids in [lo, hi]: an Int32Array, an IndexTensor, or a slice of a larger one (inherited bounds). */
    ids: (n, lo, hi) => {
      const r = rng.next();
      if (r < 0.5) return ctx.i32(n, lo, hi);
      if (r < 0.75) return rk.indexTensor(ctx.i32(n, lo, hi));
      return rk.indexTensor(ctx.i32(n + 2, lo, hi + 1)).slice(1, n + 1);
    },
    /** A CPU IndexTensor [3, 2] (sometimes disposed, sometimes a slice). */
    it: () => {
      const t = rk.indexTensor(ctx.i32(6, -3, 9), [3, 2]);
      const r = rng.next();
      if (r < 0.15) t.dispose();
      return r > 0.8 ? t.slice(1) : t;
    },
    /** A random CPU tensor of `shape`. */
    t: (shape) => rk.tensor(ctx.f32(shape.reduce((a, b) => a * b, 1)), shape),
    disposed: () => {
      const t = ctx.t([2, 2]);
      t.dispose();
      return t;
    },
    /** A tensor whose Float32Array was transferred away under it. */
    onDetached: () => {
      const data = ctx.f32(6);
      const t = rk.tensor(data, [2, 3]);
      structuredClone(data.buffer, { transfer: [data.buffer] });
      return t;
    },
    /** Mostly a live tensor, sometimes one on a detached buffer. */
    onDetachedOr: () => (rng.next() < 0.2 ? ctx.onDetached() : ctx.t([2, 3])),
    /** The saved of a fresh training forward of the shared LSTM. */
    trainingSaved: () => ctx.ops.lstm.forwardSync(ctx.t([3, 2, 3]), { training: true }).saved,
  };
  ctx.ops = {
    lstm: new rk.Recurrent({ mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, dropout: 0.25, device: 'cpu', seed: 1 }),
    gru: new rk.Recurrent({ mode: 'gru', inputSize: 3, hiddenSize: 3, bidirectional: true, linearBeforeReset: false, device: 'cpu', seed: 2 }),
    proj: new rk.Recurrent({ mode: 'lstm', inputSize: 3, hiddenSize: 4, projSize: 2, peepholes: true, cellClip: 3, batchFirst: true, device: 'cpu', seed: 3 }),
    relu: new rk.Recurrent({ mode: 'rnn_relu', inputSize: 3, hiddenSize: 3, inputMode: 'skip', numLayers: 2, device: 'cpu', seed: 4 }),
  };
  ctx.recurrent = () => ctx.pick(Object.values(ctx.ops));
  ctx.norm = new rk.RMSNorm({ size: 4, eps: 1e-5 });
  ctx.norm2 = new rk.RMSNorm({ size: [2, 3], bias: false });
  ctx.linear = new rk.Linear({ inFeatures: 3, outFeatures: 5, seed: 5 });
  ctx.params = [rk.tensor(ctx.f32(4), [4]), rk.tensor(ctx.f32(6), [2, 3])];
  ctx.grads = () => ctx.params.map((p) => ctx.t(p.shape));
  ctx.optimizers = [
    new rk.SGD(ctx.params, { lr: 0.01, momentum: 0.9, nesterov: true }),
    new rk.Adam([{ params: [ctx.params[0]], lr: 1e-3 }, { params: [ctx.params[1]], amsgrad: true }]),
    new rk.AdamW(ctx.params, { weightDecay: 0.1 }),
    new rk.Adagrad(ctx.params, { lrDecay: 0.01 }),
    new rk.RMSprop(ctx.params, { momentum: 0.5, centered: true }),
  ];
  ctx.optimizer = () => ctx.pick(ctx.optimizers);
  ctx.schedules = () => [
    new rk.StepLR(null, { stepSize: 3, gamma: 0.5 }),
    new rk.CosineAnnealingLR(null, { tMax: 10, etaMin: 1e-4 }),
    new rk.LinearWarmup(null, { warmupSteps: 4, startFactor: 0.1, then: new rk.StepLR(null, { stepSize: 2 }) }),
  ];
  ctx.schedule = () => ctx.pick(ctx.schedules());
  ctx.stepSpec = () => {
    const b = new rk.StepNetBuilder();
    b.input('x', 3);
    b.state('h', 2);
    b.state('c', 2);
    b.param('W_ih', ctx.t([8, 3]));
    b.param('W_hh', ctx.t([8, 2]));
    b.param('b', ctx.t([8]));
    b.link('x_t', 'x');
    b.link('h_prev', 'h');
    b.link('c_prev', 'c');
    b.fc('gx', 'x_t', 'W_ih', 'b');
    b.matmul('gh', 'h_prev', 'W_hh');
    b.add('gates', 'gx', 'gh');
    b.lstmUnit(['h_t', 'c_t'], 'gates', 'c_prev');
    b.link('h_t', 'h', { offset: 1 });
    b.link('c_t', 'c', { offset: 1 });
    b.alias('y', 'h', 1);
    b.alias('hy', 'h', -1);
    return b.toSpec();
  };
  ctx.net = new rk.RecurrentNetwork(ctx.stepSpec());
  ctx.netSaved = () => ctx.net.forwardSync({ x: ctx.t([3, 2, 3]) }).saved;
  ctx.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rnnkit-fuzz-'));
  ctx.checkpoints = makeCheckpoints(ctx);
  addModelContext(ctx);
  ctx.close = () => {
    closeModelContext(ctx);
    fs.rmSync(ctx.dir, { recursive: true, force: true });
  };
  return ctx;
}

/** A valid checkpoint folder and damaged copies of it: missing, truncated, flipped and rewritten files. */
function makeCheckpoints(ctx) {
  const { rk, rng } = ctx;
  const good = path.join(ctx.dir, 'good');
  const sched = new rk.StepLR(ctx.optimizers[1], { stepSize: 2 });
  ctx.optimizers[1].stepSync(ctx.grads());
  rk.saveCheckpoint(good, { params: { a: ctx.params[0], b: ctx.params[1] }, optimizer: ctx.optimizers[1], scheduler: sched, step: 3,
    rng: new rk.Rng(7), extra: { note: 'fuzz' } });
  const files = ['checkpoint.json', 'model.safetensors', 'optimizer.safetensors'];
  const dirs = [good, path.join(ctx.dir, 'absent'), path.join(good, 'model.safetensors')];
  const variants = [
    (f, b) => b.subarray(0, rng.int(0, b.length)),
    (f, b) => { const c = Buffer.from(b); for (let k = 0; k < 4; k++) c[rng.int(0, c.length - 1)] ^= 1 << rng.int(0, 7); return c; },
    (f, b) => { const c = Buffer.from(b); c.writeBigUInt64LE(2n ** BigInt(rng.int(8, 63)), 0); return c; },
    () => Buffer.from(ctx.pick(['{', 'null', '[]', '{"format":"rnnkit-checkpoint/1"}', '{"format":"rnnkit-checkpoint/1","step":-1}',
      '{"format":"rnnkit-checkpoint/1","step":1,"rng":[0,0,0,0],"optimizer":null,"scheduler":null}',
      '{"format":"rnnkit-checkpoint/1","step":1,"rng":null,"optimizer":{"kind":"Adam","groups":[{"hyper":{"lr":"x"},"params":[0]}],"steps":{"0":1}},"scheduler":null}',
      '{"format":"rnnkit-checkpoint/1","step":1,"rng":null,"optimizer":null,"scheduler":{"lastStep":1e300}}',
      '{"format":"rnnkit-checkpoint/1","step":1,"rng":null,"optimizer":{"kind":"Adam","groups":5,"steps":{"x":1}},"scheduler":null}'])),
    () => null,
    () => 'dir',
  ];
  for (let k = 0; k < 24; k++) {
    const dir = path.join(ctx.dir, `bad${k}`);
    fs.mkdirSync(dir);
    const victim = files[k % files.length];
    for (const f of files) {
      const bytes = fs.readFileSync(path.join(good, f));
      if (f !== victim) { fs.writeFileSync(path.join(dir, f), bytes); continue; }
      const out = variants[(k + Math.floor(k / 3)) % variants.length](f, bytes);
      if (out === 'dir') fs.mkdirSync(path.join(dir, f));
      else if (out !== null) fs.writeFileSync(path.join(dir, f), out);
    }
    dirs.push(dir);
  }
  return dirs;
}

/** Encoded safetensors files: valid, and damaged the ways a truncated or hand-edited file is. */
function safetensorsBuffer(ctx) {
  const { rk, rng } = ctx;
  const valid = rk.encodeSafetensors({ a: { shape: [2, 2], data: ctx.f32(4) }, b: { shape: [3], data: ctx.f32(3) } }, { k: 'v' });
  const header = (json) => {
    const body = Buffer.from(json);
    const out = Buffer.alloc(8 + body.length + 16);
    out.writeBigUInt64LE(BigInt(body.length), 0);
    body.copy(out, 8);
    return out;
  };
  switch (rng.int(0, 7)) {
    case 0: return valid;
    case 1: return valid.subarray(0, rng.int(0, valid.length));
    case 2: { const c = Buffer.from(valid); c[rng.int(0, c.length - 1)] ^= 0xff; return c; }
    case 3: return header(ctx.pick(['{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', '{"a":{"dtype":"I8","shape":[1],"data_offsets":[0,1]}}',
      '{"a":{"dtype":"F32","shape":[1e300],"data_offsets":[0,16]}}', '{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}',
      '{"__proto__":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', '{"__metadata__":5}', '[]', '{"a":null}',
      '{"a":{"dtype":"F16","shape":[8],"data_offsets":[0,16]}}', '{"a":{"dtype":"F32","shape":[2,-2],"data_offsets":[0,16]}}']));
    case 4: { const c = Buffer.from(valid); c.writeBigUInt64LE(2n ** 62n, 0); return c; }
    case 5: return Buffer.alloc(rng.int(0, 12));
    case 6: return new Uint8Array(valid);
    default: return ctx.h.value();
  }
}

/**
 * The targets. `args(ctx)` returns valid arguments; `call(ctx, args)` makes the call; `userCode`
 * marks targets that run the fuzz's own callbacks; `noSuccess` those that can never succeed;
 * `needs(ctx)` is false where the target cannot run here (no collectives backend built).
 */
function targets() {
  const seq = (ctx, op, training) => {
    const T = ctx.rng.int(0, 3);
    const B = ctx.rng.int(1, 3);
    const x = op.batchFirst ? ctx.t([B, T, op.inputSize]) : ctx.t([T, B, op.inputSize]);
    const o = { training };
    if (ctx.rng.next() < 0.4) o.hx = ctx.t([op.numLayers * op.numDirections, B, op.stateSize]);
    if (op.mode === 'lstm' && ctx.rng.next() < 0.3) o.cx = ctx.t([op.numLayers * op.numDirections, B, op.hiddenSize]);
    if (ctx.rng.next() < 0.3) o.seqLengths = ctx.i32(B, 0, T);
    if (ctx.rng.next() < 0.2) o.dropoutSeed = ctx.rng.int(0, 1000);
    if (ctx.rng.next() < 0.2) o.dropout = ctx.rng.next() < 0.5;
    return [x, o];
  };
  const backwardArgs = (ctx, op) => {
    const [x, o] = seq(ctx, op, true);
    const f = op.forwardSync(x, o);
    const g = { dy: ctx.t(f.y.shape) };
    if (ctx.rng.next() < 0.4) g.dhy = ctx.t(f.hy.shape);
    if (f.cy && ctx.rng.next() < 0.3) g.dcy = ctx.t(f.cy.shape);
    if (ctx.rng.next() < 0.3) { g.dweights = ctx.t(op.weights.shape); g.accumulate = ctx.rng.next() < 0.5; }
    return [f.saved, g];
  };
  const selector = (ctx, op) => {
    const kinds = ['w_ih', 'w_hh', 'b_ih', 'b_hh'].concat(op.projSize ? ['w_proj'] : [], op.peepholes ? ['w_peephole'] : []);
    const s = { layer: ctx.rng.int(0, op.numLayers - 1), direction: ctx.rng.int(0, op.numDirections - 1), kind: ctx.pick(kinds) };
    if (op.inputMode === 'skip' && s.layer === 0 && s.kind === 'w_ih') s.kind = 'w_hh';
    return s;
  };
  /** An op with weight records, and a format it can be exchanged in. */
  const exportable = (ctx) => (ctx.rng.next() < 0.5 ? [ctx.ops.lstm, ctx.pick(['pytorch', 'onnx', 'keras'])] : [ctx.ops.gru, ctx.pick(['onnx', 'keras'])]);
  const recurrentOptions = (ctx) => {
    const mode = ctx.pick(MODES);
    const H = ctx.rng.int(1, 4);
    const o = { mode, inputSize: ctx.rng.int(1, 4), hiddenSize: H, numLayers: ctx.rng.int(1, 3), device: 'cpu', seed: ctx.rng.int(0, 99) };
    if (ctx.rng.next() < 0.3) o.bidirectional = true;
    if (ctx.rng.next() < 0.3) o.dropout = 0.3;
    if (ctx.rng.next() < 0.2) o.batchFirst = true;
    if (mode === 'lstm' && ctx.rng.next() < 0.3) o.projSize = ctx.rng.int(1, H);
    if (mode === 'lstm' && ctx.rng.next() < 0.3) o.peepholes = true;
    if (mode === 'lstm' && ctx.rng.next() < 0.2) o.cellClip = 2;
    if (mode === 'gru' && ctx.rng.next() < 0.5) o.linearBeforeReset = false;
    if (ctx.rng.next() < 0.2) { o.inputMode = 'skip'; o.inputSize = H; delete o.projSize; }
    if (ctx.rng.next() < 0.2) o.algorithm = ctx.pick(['auto', 'standard', 'persistent']);
    return o;
  };
  const rmsArgs = (ctx) => {
    const rows = ctx.rng.int(0, 4);
    const cols = ctx.rng.int(1, 5);
    return [ctx.t([rows, cols]), ctx.t([cols]), ctx.rng.next() < 0.5 ? ctx.t([cols]) : null, { axis: -1, eps: 1e-5 }];
  };
  const rmsBackArgs = (ctx) => {
    const [x, gamma, beta] = rmsArgs(ctx);
    const { rrms } = ctx.rk.rmsNormSync(x, gamma, beta);
    const o = { bias: beta !== null };
    if (ctx.rng.next() < 0.3) { o.dgamma = ctx.t(gamma.shape); o.accumulate = false; }
    return [x, rrms, ctx.t(x.shape), gamma, o];
  };
  const matmulArgs = (ctx) => {
    const [M, K, N] = [ctx.rng.int(0, 4), ctx.rng.int(0, 4), ctx.rng.int(0, 4)];
    const transA = ctx.rng.next() < 0.5;
    const transB = ctx.rng.next() < 0.5;
    const o = { transA, transB };
    if (ctx.rng.next() < 0.3) { o.out = ctx.t([M, N]); o.accumulate = ctx.rng.next() < 0.5; }
    return [ctx.t(transA ? [K, M] : [M, K]), ctx.t(transB ? [N, K] : [K, N]), o];
  };
  const ceArgs = (ctx) => {
    const N = ctx.rng.int(0, 4);
    const V = ctx.rng.int(1, 4);
    const o = { reduction: ctx.pick(['mean', 'sum']) };
    if (ctx.rng.next() < 0.3) o.mask = ctx.f32(N, 0, 1);
    if (ctx.rng.next() < 0.3) o.ignoreIndex = 0;
    if (ctx.rng.next() < 0.2) o.grad = false;
    return [ctx.t([N, V]), ctx.ids(N, 0, V - 1), o];
  };
  const mseArgs = (ctx) => { const s = [ctx.rng.int(0, 3), 2]; return [ctx.t(s), ctx.t(s), { reduction: ctx.pick(['mean', 'sum']) }]; };
  const optimizerArgs = (ctx) => [ctx.params.map((p) => p), { lr: 0.01 }];
  const stepGrads = (ctx, opt) => (ctx.rng.next() < 0.5 ? opt.params.map((p) => ctx.t(p.shape)) : new Map(opt.params.map((p) => [p, ctx.t(p.shape)])));
  const tbpttArgs = (ctx) => {
    const op = ctx.ops.lstm;
    let budget = 40;
    const spend = () => { if (--budget < 0) throw new HostileError('callback budget'); };
    const o = {
      model: op, length: ctx.rng.int(1, 6), segmentLength: ctx.rng.int(1, 3),
      input: ctx.rng.next() < 0.5 ? ctx.t([6, 2, 3]) : (start, len) => { spend(); return ctx.t([len, 2, 3]); },
      head: (y) => { spend(); return { loss: 1, dy: ctx.t(y.shape) }; },
    };
    if (ctx.rng.next() < 0.5) o.chunkLength = ctx.rng.int(1, 2);
    if (ctx.rng.next() < 0.5) o.onSegment = () => spend();
    if (ctx.rng.next() < 0.3) o.dropoutSeed = () => 5;
    if (ctx.rng.next() < 0.3) o.hx = ctx.t([2, 2, 4]);
    return [o];
  };
  const builderCall = (ctx, b, name, args) => b[name](...args);
  const nameOf = (ctx) => ctx.pick(['x', 'h', 'c', 'x_t', 'h_prev', 'c_prev', 'gx', 'gh', 'gates', 'h_t', 'c_t', 'W_ih', 'W_hh', 'b', 'y']);
  const builderMethods = {
    input: (ctx) => [nameOf(ctx), ctx.rng.int(1, 4)], state: (ctx) => [nameOf(ctx), ctx.rng.int(1, 4), { initSteps: 1 }],
    param: (ctx) => [nameOf(ctx), ctx.t([2, 3])], link: (ctx) => [nameOf(ctx), nameOf(ctx), { offset: ctx.rng.int(0, 1), window: 1 }],
    alias: (ctx) => [nameOf(ctx), nameOf(ctx), ctx.pick([1, -1, 0])], recompute: (ctx) => [nameOf(ctx)],
    timestep: (ctx) => ['t'], op: (ctx) => [ctx.pick(['add', 'tanh', 'fc', 'concat']), [nameOf(ctx)], [nameOf(ctx), nameOf(ctx)], {}],
    fc: (ctx) => [nameOf(ctx), nameOf(ctx), nameOf(ctx), nameOf(ctx)], matmul: (ctx) => [nameOf(ctx), nameOf(ctx), nameOf(ctx)],
    add: (ctx) => [nameOf(ctx), nameOf(ctx), nameOf(ctx)], sub: (ctx) => [nameOf(ctx), nameOf(ctx), nameOf(ctx)],
    mul: (ctx) => [nameOf(ctx), nameOf(ctx), nameOf(ctx)], sigmoid: (ctx) => [nameOf(ctx), nameOf(ctx)],
    tanh: (ctx) => [nameOf(ctx), nameOf(ctx)], relu: (ctx) => [nameOf(ctx), nameOf(ctx)], copy: (ctx) => [nameOf(ctx), nameOf(ctx)],
    concat: (ctx) => [nameOf(ctx), [nameOf(ctx), nameOf(ctx)], ctx.pick([0, 1])], slice: (ctx) => [nameOf(ctx), nameOf(ctx), 0, 2, 1],
    split: (ctx) => [[nameOf(ctx), nameOf(ctx)], nameOf(ctx), [1, 1], 1], lstmUnit: (ctx) => [[nameOf(ctx), nameOf(ctx)], nameOf(ctx), nameOf(ctx)],
    gruUnit: (ctx) => [nameOf(ctx), nameOf(ctx), nameOf(ctx), nameOf(ctx), { linearBeforeReset: true }],
    rmsNorm: (ctx) => [nameOf(ctx), nameOf(ctx), nameOf(ctx), undefined, 1e-5],
  };
  const list = [
    // tensors
    { name: 'tensor', args: (ctx) => { const n = ctx.rng.int(0, 6); return [ctx.rng.next() < 0.5 ? ctx.f32(n) : Array.from(ctx.f32(n)), [n], { device: 'cpu' }]; },
      call: (ctx, a) => ctx.rk.tensor(...a) },
    { name: 'zeros', args: (ctx) => [[ctx.rng.int(0, 3), 2], { device: 'cpu' }], call: (ctx, a) => ctx.rk.zeros(...a) },
    { name: 'ones', args: (ctx) => [[2, ctx.rng.int(0, 3)]], call: (ctx, a) => ctx.rk.ones(...a) },
    { name: 'full', args: (ctx) => [[ctx.rng.int(0, 3)], 1.5, {}], call: (ctx, a) => ctx.rk.full(...a) },
    { name: 'new Tensor', args: (ctx) => [[2], 'cpu', {}], call: (ctx, a) => new ctx.rk.Tensor(...a), noSuccess: true },
    { name: 'Tensor.fromCpu', args: (ctx) => [ctx.f32(4), [2, 2]], call: (ctx, a) => ctx.rk.Tensor.fromCpu(...a) },
    { name: 'Tensor.fromDevice', args: (ctx) => [{}, 'cuda:0', [2]], call: (ctx, a) => ctx.rk.Tensor.fromDevice(...a), noSuccess: true },
    ...['disposed', 'rank', 'data', 'deviceBuffer'].map((p) => ({
      name: `Tensor#${p}`, args: (ctx) => [ctx.rng.next() < 0.2 ? ctx.disposed() : ctx.t([2, 3])], call: (ctx, a) => a[0][p],
      receiver: true, noSuccess: p === 'deviceBuffer',
    })),
    { name: 'Tensor#reshape', args: (ctx) => [ctx.t([2, 3]), [3, 2]], call: (ctx, [t, s]) => t.reshape(s), receiver: true },
    { name: 'Tensor#to', args: (ctx) => [ctx.t([2]), 'cpu'], call: (ctx, [t, d]) => t.to(d), receiver: true },
    { name: 'Tensor#read', args: (ctx) => [ctx.t([2])], call: (ctx, [t]) => t.read(), receiver: true },
    { name: 'Tensor#readSync', args: (ctx) => [ctx.onDetachedOr()], call: (ctx, [t]) => t.readSync(), receiver: true },
    { name: 'Tensor#clone', args: (ctx) => [ctx.onDetachedOr()], call: (ctx, [t]) => t.clone(), receiver: true },
    { name: 'Tensor#dispose', args: (ctx) => [ctx.t([2])], call: (ctx, [t]) => t.dispose(), receiver: true },
    { name: 'Tensor#[Symbol.dispose]', args: (ctx) => [ctx.t([2])], call: (ctx, [t]) => t[Symbol.dispose](), receiver: true },
    { name: 'Tensor#assertLive', args: (ctx) => [ctx.t([2]), 'x'], call: (ctx, [t, w]) => t.assertLive(w), receiver: true },
    { name: 'Tensor#toString', args: (ctx) => [ctx.t([2])], call: (ctx, [t]) => t.toString(), receiver: true },
    // index tensors
    { name: 'indexTensor', args: (ctx) => { const n = ctx.rng.int(0, 6); const d = ctx.i32(n, -5, 5); return [ctx.rng.next() < 0.5 ? d : Array.from(d), [n], { device: 'cpu' }]; },
      call: (ctx, a) => ctx.rk.indexTensor(...a) },
    { name: 'new IndexTensor', args: () => [Symbol('no'), [2], 'cpu', {}, 0, null, false], call: (ctx, a) => new ctx.rk.IndexTensor(...a), noSuccess: true },
    ...['bounds', 'disposed', 'rank', 'deviceBuffer'].map((p) => ({
      name: `IndexTensor#${p}`, args: (ctx) => [ctx.it()], call: (ctx, [t]) => t[p], receiver: true, noSuccess: p === 'deviceBuffer',
    })),
    { name: 'IndexTensor#slice', args: (ctx) => [ctx.it(), ctx.rng.int(-3, 3), ctx.pick([undefined, ctx.rng.int(-3, 3)])], call: (ctx, [t, ...a]) => t.slice(...a), receiver: true },
    { name: 'IndexTensor#to', args: (ctx) => [ctx.it(), 'cpu'], call: (ctx, [t, d]) => t.to(d), receiver: true },
    { name: 'IndexTensor#read', args: (ctx) => [ctx.it()], call: (ctx, [t]) => t.read(), receiver: true },
    { name: 'IndexTensor#readSync', args: (ctx) => [ctx.it()], call: (ctx, [t]) => t.readSync(), receiver: true },
    { name: 'IndexTensor#idsFor', args: (ctx) => [ctx.it(), 'cpu', 'ids', 10, ctx.pick([null, -3]), ctx.pick([null, ctx.f32(6, 0, 1)])], call: (ctx, [t, ...a]) => t.idsFor(...a), receiver: true },
    { name: 'IndexTensor#dispose', args: (ctx) => [ctx.it()], call: (ctx, [t]) => t.dispose(), receiver: true },
    { name: 'IndexTensor#[Symbol.dispose]', args: (ctx) => [ctx.it()], call: (ctx, [t]) => t[Symbol.dispose](), receiver: true },
    { name: 'IndexTensor#assertLive', args: (ctx) => [ctx.it(), 'ids'], call: (ctx, [t, w]) => t.assertLive(w), receiver: true },
    { name: 'IndexTensor#toString', args: (ctx) => [ctx.it()], call: (ctx, [t]) => t.toString(), receiver: true },
    // device and process settings
    { name: 'backendInfo', args: () => [], call: (ctx) => ctx.rk.backendInfo() },
    { name: 'defaultDevice', args: () => [], call: (ctx) => ctx.rk.defaultDevice() },
    { name: 'numThreads', args: () => [], call: (ctx) => ctx.rk.numThreads() },
    { name: 'releaseCachedMemory', args: () => [], call: (ctx) => ctx.rk.releaseCachedMemory() },
    { name: 'setNumThreads', args: (ctx) => [ctx.rng.int(1, 2)], call: (ctx, a) => { try { return ctx.rk.setNumThreads(...a); } finally { ctx.rk.setNumThreads(ctx.threads); } } },
    { name: 'setCheckFinite', args: (ctx) => [ctx.rng.next() < 0.5], call: (ctx, a) => ctx.rk.setCheckFinite(...a) },
    { name: 'checkFiniteEnabled', args: () => [], call: (ctx) => ctx.rk.checkFiniteEnabled() },
    { name: 'new RnnkitError', args: () => ['ERR_RNNKIT_ARG', 'm', { cause: 1 }], call: (ctx, a) => new ctx.rk.RnnkitError(...a) },
    // matmul and RMSNorm
    { name: 'matmul', args: matmulArgs, call: (ctx, a) => ctx.rk.matmul(...a) },
    { name: 'matmulSync', args: matmulArgs, call: (ctx, a) => ctx.rk.matmulSync(...a) },
    { name: 'rmsNorm', args: rmsArgs, call: (ctx, a) => ctx.rk.rmsNorm(...a) },
    { name: 'rmsNormSync', args: rmsArgs, call: (ctx, a) => ctx.rk.rmsNormSync(...a) },
    { name: 'rmsNormBackward', args: rmsBackArgs, call: (ctx, a) => ctx.rk.rmsNormBackward(...a) },
    { name: 'rmsNormBackwardSync', args: rmsBackArgs, call: (ctx, a) => ctx.rk.rmsNormBackwardSync(...a) },
    { name: 'new RMSNorm', args: (ctx) => [{ size: ctx.rng.next() < 0.5 ? 3 : [2, 2], eps: 1e-5, bias: true, gamma: ctx.f32(ctx.rng.next() < 0.5 ? 3 : 4) }],
      call: (ctx, a) => new ctx.rk.RMSNorm(...a) },
    ...['gamma', 'beta', 'disposed'].map((p) => ({ name: `RMSNorm#${p}`, args: (ctx) => [ctx.pick([ctx.norm, ctx.norm2])], call: (ctx, [n]) => n[p], receiver: true })),
    ...['forward', 'forwardSync'].map((m) => ({
      name: `RMSNorm#${m}`, args: (ctx) => { const n = ctx.pick([ctx.norm, ctx.norm2]); return [n, ctx.t([ctx.rng.int(0, 3), ...n.shape]), {}]; },
      call: (ctx, [n, ...a]) => n[m](...a), receiver: true,
    })),
    ...['backward', 'backwardSync'].map((m) => ({
      name: `RMSNorm#${m}`,
      args: (ctx) => { const n = ctx.pick([ctx.norm, ctx.norm2]); const x = ctx.t([2, ...n.shape]); const { rrms } = n.forwardSync(x); return [n, { x, rrms, dy: ctx.t(x.shape) }]; },
      call: (ctx, [n, ...a]) => n[m](...a), receiver: true,
    })),
    { name: 'RMSNorm#dispose', args: (ctx) => [new ctx.rk.RMSNorm({ size: 2 })], call: (ctx, [n]) => n.dispose(), receiver: true },
    { name: 'RMSNorm#[Symbol.dispose]', args: (ctx) => [new ctx.rk.RMSNorm({ size: 2 })], call: (ctx, [n]) => n[Symbol.dispose](), receiver: true },
    // Recurrent
    { name: 'new Recurrent', args: (ctx) => [recurrentOptions(ctx)], call: (ctx, a) => new ctx.rk.Recurrent(...a) },
    { name: 'recordShapes', args: (ctx) => { const o = recurrentOptions(ctx); return [o, o.inputMode === 'skip' ? 'keras' : 'pytorch']; },
      call: (ctx, a) => ctx.rk.recordShapes(...a) },
    ...['numDirections', 'stateSize', 'weights', 'disposed', 'weightsVersion'].map((p) => ({ name: `Recurrent#${p}`, args: (ctx) => [ctx.recurrent()], call: (ctx, [op]) => op[p], receiver: true })),
    // @internal: the nn modules' access to the packed weights (the fuzz's ops are on the CPU, which keeps no device copy: ERR_RNNKIT_DEVICE).
    ...['deviceWeightsSync', 'exportPacked'].map((m) => ({
      name: `Recurrent#${m}`, args: (ctx) => [ctx.recurrent()], call: (ctx, [op]) => op[m](), receiver: true,
      noSuccess: m === 'deviceWeightsSync',
    })),
    ...['savedSize', 'algorithmFor'].map((m) => ({ name: `Recurrent#${m}`, args: (ctx) => [ctx.recurrent(), ctx.rng.int(0, 9), ctx.rng.int(0, 9)], call: (ctx, [op, ...a]) => op[m](...a), receiver: true })),
    { name: 'Recurrent#recordShapes', args: exportable, call: (ctx, [op, f]) => op.recordShapes(f), receiver: true },
    ...['forward', 'forwardSync'].map((m) => ({
      name: `Recurrent#${m}`, args: (ctx) => { const op = ctx.recurrent(); return [op, ...seq(ctx, op, ctx.rng.next() < 0.5)]; },
      call: (ctx, [op, ...a]) => op[m](...a), receiver: true,
    })),
    ...['backward', 'backwardSync'].map((m) => ({
      name: `Recurrent#${m}`, args: (ctx) => { const op = ctx.recurrent(); return [op, ...backwardArgs(ctx, op)]; },
      call: (ctx, [op, ...a]) => op[m](...a), receiver: true,
    })),
    { name: 'Recurrent#getParam', args: (ctx) => { const op = ctx.recurrent(); return [op, selector(ctx, op)]; }, call: (ctx, [op, s]) => op.getParam(s), receiver: true },
    { name: 'Recurrent#setParam', args: (ctx) => { const op = ctx.recurrent(); const s = selector(ctx, op); return [op, s, op.getParam(s)]; },
      call: (ctx, [op, ...a]) => op.setParam(...a), receiver: true },
    { name: 'Recurrent#exportWeights', args: exportable, call: (ctx, [op, f]) => op.exportWeights(f), receiver: true },
    { name: 'Recurrent#importWeights', args: (ctx) => { const [op, f] = exportable(ctx); return [op, f, op.exportWeights(f)]; },
      call: (ctx, [op, ...a]) => op.importWeights(...a), receiver: true },
    { name: 'Recurrent#dispose', args: (ctx) => [new ctx.rk.Recurrent(recurrentOptions(ctx))], call: (ctx, [op]) => op.dispose(), receiver: true },
    { name: 'Recurrent#[Symbol.dispose]', args: (ctx) => [new ctx.rk.Recurrent(recurrentOptions(ctx))], call: (ctx, [op]) => op[Symbol.dispose](), receiver: true },
    { name: 'new RecurrentSaved', args: () => [{}], call: (ctx, a) => new ctx.rk.RecurrentSaved(...a), noSuccess: true },
    ...['released', 'inputDevice'].map((p) => ({ name: `RecurrentSaved#${p}`, args: (ctx) => [ctx.trainingSaved()], call: (ctx, [s]) => s[p], receiver: true })),
    { name: 'RecurrentSaved#release', args: (ctx) => [ctx.trainingSaved()], call: (ctx, [s]) => s.release(), receiver: true },
    // step nets
    { name: 'new StepNetBuilder', args: () => [], call: (ctx) => new ctx.rk.StepNetBuilder() },
    ...Object.entries(builderMethods).map(([m, gen]) => ({
      name: `StepNetBuilder#${m}`, args: (ctx) => [new ctx.rk.StepNetBuilder(), ...gen(ctx)], call: (ctx, [b, ...a]) => builderCall(ctx, b, m, a), receiver: true,
    })),
    { name: 'StepNetBuilder#toSpec', args: (ctx) => [new ctx.rk.StepNetBuilder()], call: (ctx, [b]) => b.toSpec(), receiver: true },
    {
      name: 'StepNetBuilder#build',
      args: (ctx) => {
        const b = new ctx.rk.StepNetBuilder();
        const names = Object.keys(builderMethods);
        for (let k = ctx.rng.int(0, 8); k > 0; k--) {
          const m = ctx.pick(names);
          try { b[m](...builderMethods[m](ctx)); } catch (err) { if (!(err instanceof ctx.rk.RnnkitError)) throw err; }
        }
        return [b];
      },
      call: (ctx, [b]) => b.build(), receiver: true,
    },
    { name: 'new RecurrentNetwork', args: (ctx) => [ctx.stepSpec()], call: (ctx, a) => new ctx.rk.RecurrentNetwork(...a) },
    ...['forward', 'forwardSync'].map((m) => ({
      name: `RecurrentNetwork#${m}`,
      args: (ctx) => {
        const B = ctx.rng.int(1, 2);
        const T = ctx.rng.int(1, 3);
        const inputs = { x: ctx.t([T, B, 3]) };
        if (ctx.rng.next() < 0.3) inputs.h = ctx.t([B, 2]);
        const o = { executor: ctx.pick(['auto', 'sequential', 'wavefront']) };
        if (ctx.rng.next() < 0.3) o.seqLengths = ctx.i32(B, 0, T);
        if (ctx.rng.next() < 0.2) o.steps = T;
        return [ctx.net, inputs, o];
      },
      call: (ctx, [n, ...a]) => n[m](...a), receiver: true,
    })),
    ...['backward', 'backwardSync'].map((m) => ({
      name: `RecurrentNetwork#${m}`,
      args: (ctx) => { const f = ctx.net.forwardSync({ x: ctx.t([2, 2, 3]) }); return [ctx.net, f.saved, { y: ctx.t(f.outputs.y.shape) }, { executor: 'auto' }]; },
      call: (ctx, [n, ...a]) => n[m](...a), receiver: true,
    })),
    { name: 'RecurrentNetwork#fetchBlob', args: (ctx) => [ctx.net, ctx.pick(['gates', 'h_t', 'x_t', 'nope']), ctx.rng.int(0, 2), ctx.netSaved()],
      call: (ctx, [n, ...a]) => n.fetchBlob(...a), receiver: true },
    { name: 'RecurrentNetwork#setParam', args: (ctx) => [ctx.net, 'b', ctx.t([8])], call: (ctx, [n, ...a]) => n.setParam(...a), receiver: true },
    { name: 'new StepNetSaved', args: () => [{}], call: (ctx, a) => new ctx.rk.StepNetSaved(...a), noSuccess: true },
    { name: 'StepNetSaved#released', args: (ctx) => [ctx.netSaved()], call: (ctx, [s]) => s.released, receiver: true },
    { name: 'StepNetSaved#release', args: (ctx) => [ctx.netSaved()], call: (ctx, [s]) => s.release(), receiver: true },
    // training
    { name: 'new Linear', args: (ctx) => [{ inFeatures: ctx.rng.int(1, 4), outFeatures: ctx.rng.int(1, 4), bias: ctx.rng.next() < 0.5, seed: 3, device: 'cpu' }],
      call: (ctx, a) => new ctx.rk.Linear(...a) },
    { name: 'Linear#parameters', args: (ctx) => [ctx.linear], call: (ctx, [l]) => l.parameters(), receiver: true },
    ...['forward', 'forwardSync'].map((m) => ({ name: `Linear#${m}`, args: (ctx) => [ctx.linear, ctx.t([ctx.rng.int(0, 3), 3])], call: (ctx, [l, x]) => l[m](x), receiver: true })),
    ...['backward', 'backwardSync'].map((m) => ({
      name: `Linear#${m}`,
      args: (ctx) => { const N = ctx.rng.int(0, 3); const o = {}; if (ctx.rng.next() < 0.3) { o.dweight = ctx.t([5, 3]); o.dbias = ctx.t([5]); o.accumulate = true; } return [ctx.linear, ctx.t([N, 3]), ctx.t([N, 5]), o]; },
      call: (ctx, [l, ...a]) => l[m](...a), receiver: true,
    })),
    { name: 'crossEntropy', args: ceArgs, call: (ctx, a) => ctx.rk.crossEntropy(...a) },
    { name: 'crossEntropySync', args: ceArgs, call: (ctx, a) => ctx.rk.crossEntropySync(...a) },
    { name: 'mseLoss', args: mseArgs, call: (ctx, a) => ctx.rk.mseLoss(...a) },
    { name: 'mseLossSync', args: mseArgs, call: (ctx, a) => ctx.rk.mseLossSync(...a) },
    ...['SGD', 'Adam', 'AdamW', 'Adagrad', 'RMSprop'].map((k) => ({ name: `new ${k}`, args: optimizerArgs, call: (ctx, a) => new ctx.rk[k](...a) })),
    { name: 'new Optimizer', args: () => ['X', {}, [], {}], call: (ctx, a) => new ctx.rk.Optimizer(...a), noSuccess: true },
    { name: 'Optimizer#params', args: (ctx) => [ctx.optimizer()], call: (ctx, [o]) => o.params, receiver: true },
    { name: 'Optimizer#set', args: (ctx) => [ctx.optimizer(), 'lr', ctx.rng.uniform(0, 0.1)], call: (ctx, [o, ...a]) => o.set(...a), receiver: true },
    ...['step', 'stepSync'].map((m) => ({ name: `Optimizer#${m}`, args: (ctx) => { const o = ctx.optimizer(); return [o, stepGrads(ctx, o)]; }, call: (ctx, [o, g]) => o[m](g), receiver: true })),
    { name: 'Optimizer#stateDict', args: (ctx) => [ctx.optimizer()], call: (ctx, [o]) => o.stateDict(), receiver: true },
    { name: 'Optimizer#loadStateDict', args: (ctx) => { const o = ctx.optimizer(); return [o, o.stateDict()]; }, call: (ctx, [o, sd]) => o.loadStateDict(sd), receiver: true },
    { name: 'Optimizer#stateOf', args: (ctx) => [ctx.optimizer(), ctx.pick(ctx.params)], call: (ctx, [o, p]) => o.stateOf(p), receiver: true },
    { name: 'clipGradNorm', args: (ctx) => [ctx.grads(), 1, { errorIfNonfinite: false }], call: (ctx, a) => ctx.rk.clipGradNorm(...a) },
    { name: 'clipGradNormSync', args: (ctx) => [ctx.grads(), 0.5], call: (ctx, a) => ctx.rk.clipGradNormSync(...a) },
    { name: 'clipGradValue', args: (ctx) => [ctx.grads(), 0.1], call: (ctx, a) => ctx.rk.clipGradValue(...a) },
    { name: 'clipGradValueSync', args: (ctx) => [ctx.grads(), 0.1], call: (ctx, a) => ctx.rk.clipGradValueSync(...a) },
    { name: 'globalNormSync', args: (ctx) => [ctx.grads()], call: (ctx, a) => ctx.rk.globalNormSync(...a) },
    { name: 'new StepLR', args: (ctx) => [ctx.rng.next() < 0.5 ? null : ctx.optimizer(), { stepSize: 2, gamma: 0.5 }], call: (ctx, a) => new ctx.rk.StepLR(...a) },
    { name: 'new CosineAnnealingLR', args: (ctx) => [null, { tMax: 5, etaMin: 0 }], call: (ctx, a) => new ctx.rk.CosineAnnealingLR(...a) },
    { name: 'new LinearWarmup', args: (ctx) => [null, { warmupSteps: 3, startFactor: 0.5, then: new ctx.rk.CosineAnnealingLR(null, { tMax: 4 }) }],
      call: (ctx, a) => new ctx.rk.LinearWarmup(...a) },
    { name: 'new LRScheduler', args: () => [null], call: (ctx, a) => new ctx.rk.LRScheduler(...a), noSuccess: true },
    { name: 'LRScheduler#lastStep', args: (ctx) => [ctx.schedule()], call: (ctx, [s]) => s.lastStep, receiver: true },
    { name: 'LRScheduler#getLr', args: (ctx) => [ctx.schedule()], call: (ctx, [s]) => s.getLr(), receiver: true },
    { name: 'LRScheduler#step', args: (ctx) => [ctx.schedule()], call: (ctx, [s]) => s.step(), receiver: true },
    { name: 'LRScheduler#stateDict', args: (ctx) => [ctx.schedule()], call: (ctx, [s]) => s.stateDict(), receiver: true },
    { name: 'LRScheduler#loadStateDict', args: (ctx) => { const s = ctx.schedule(); return [s, { lastStep: 3, baseLrs: [] }]; }, call: (ctx, [s, sd]) => s.loadStateDict(sd), receiver: true },
    { name: 'LRScheduler#lrAt', args: (ctx) => [ctx.schedule(), 0.1, ctx.rng.int(0, 20)], call: (ctx, [s, ...a]) => s.lrAt(...a), receiver: true },
    { name: 'encodeSafetensors', args: (ctx) => [{ w: { shape: [2], data: ctx.f32(2) } }, { a: 'b' }], call: (ctx, a) => ctx.rk.encodeSafetensors(...a) },
    { name: 'decodeSafetensors', args: (ctx) => [safetensorsBuffer(ctx)], call: (ctx, a) => ctx.rk.decodeSafetensors(...a) },
    {
      name: 'saveCheckpoint', weight: 0.3,
      args: (ctx) => [path.join(ctx.dir, `save${ctx.rng.int(0, 3)}`), { params: { a: ctx.params[0] }, optimizer: ctx.optimizer(), scheduler: ctx.schedule(), step: 2, rng: new ctx.rk.Rng(1), extra: { k: [1] } }],
      call: (ctx, a) => ctx.rk.saveCheckpoint(...a),
    },
    {
      name: 'loadCheckpoint', weight: 0.5,
      args: (ctx) => {
        const p = [ctx.rk.tensor(new Float32Array(4), [4]), ctx.rk.tensor(new Float32Array(6), [2, 3])];
        const optimizer = new ctx.rk.Adam([{ params: [p[0]] }, { params: [p[1]] }]);
        const dir = ctx.rng.next() < 0.4 ? ctx.checkpoints[0] : ctx.pick(ctx.checkpoints);
        return [dir, { params: { a: p[0], b: p[1] }, optimizer, scheduler: new ctx.rk.StepLR(optimizer, { stepSize: 2 }) }];
      },
      call: (ctx, a) => ctx.rk.loadCheckpoint(...a),
    },
    { name: 'tbptt', args: tbpttArgs, call: (ctx, a) => ctx.rk.tbptt(...a), userCode: true },
    { name: 'new Rng', args: (ctx) => [ctx.rng.int(0, 1000)], call: (ctx, a) => new ctx.rk.Rng(...a) },
    { name: 'Rng.fromState', args: (ctx) => [new ctx.rk.Rng(ctx.rng.int(0, 9)).state()], call: (ctx, a) => ctx.rk.Rng.fromState(...a) },
    ...['state', 'nextUint32', 'uniform', 'seed'].map((m) => ({ name: `Rng#${m}`, args: (ctx) => [new ctx.rk.Rng(2)], call: (ctx, [r]) => r[m](), receiver: true })),
    { name: 'Rng#int', args: (ctx) => [new ctx.rk.Rng(2), ctx.rng.int(1, 100)], call: (ctx, [r, n]) => r.int(n), receiver: true },
  ];
  return [...list, ...modelTargets(), ...distributedTargets()]
    .map((t) => ({ weight: 1, userCode: false, noSuccess: false, receiver: false, needs: () => true, ...t }));
}

module.exports = { makeContext, targets };
