'use strict';
// Public-API fuzz targets of the model layer (rk.nn, rk.autograd, the tensor's autograd side,
// saveSafetensors / loadSafetensors) and of rk.distributed. The distributed targets run on a
// world of one process (gloo over loopback) when that backend is built, so the collectives and
// DistributedDataParallel get real calls; without it they check the options only.
const path = require('path');

/** The shared objects of these targets, added to the context of test/fuzz/api.js. */
function addModelContext(ctx) {
  const { rk } = ctx;
  const { nn } = rk;
  ctx.nn = {
    linear: new nn.Linear({ inFeatures: 3, outFeatures: 4, seed: 1 }),
    emb: new nn.Embedding({ numEmbeddings: 10, embeddingDim: 3, paddingIdx: 0, seed: 2 }),
    lstm: new nn.LSTM({ inputSize: 3, hiddenSize: 4, numLayers: 2, dropout: 0.2, seed: 3 }),
    gru: new nn.GRU({ inputSize: 3, hiddenSize: 2, bidirectional: true, seed: 4 }),
    rnn: new nn.RNN({ inputSize: 3, hiddenSize: 3, nonlinearity: 'relu', batchFirst: true, seed: 5 }),
    dropout: new nn.Dropout({ p: 0.3, seed: 6 }),
    norm: new nn.RMSNorm({ normalizedShape: 3, eps: 1e-5 }),
  };
  ctx.nn.seq = new nn.Sequential(new nn.Linear({ inFeatures: 3, outFeatures: 3, seed: 7 }), ctx.nn.dropout, ctx.nn.norm);
  ctx.module = () => ctx.pick(Object.values(ctx.nn));
  /** A leaf tensor that requires gradients. */
  ctx.leaf = (shape) => {
    const t = ctx.t(shape);
    t.requiresGrad = true;
    return t;
  };
  /** A scalar recorded from a leaf: something to call backward() on. */
  ctx.loss = () => nn.sumSync(nn.mulSync(ctx.leaf([2, 3]), ctx.t([2, 3])));
  ctx.group = null;
  const gloo = rk.distributed.backends().find((b) => b.name === 'gloo');
  if (gloo && gloo.available) ctx.group = rk.distributed.initProcessGroupSync({ backend: 'gloo', worldSize: 1, rank: 0 });
  ctx.ddp = ctx.group ? new rk.distributed.DistributedDataParallel(new nn.Linear({ inFeatures: 3, outFeatures: 2, seed: 8 }),
    { processGroup: ctx.group }) : null;
}

/** Closes what addModelContext opened. */
function closeModelContext(ctx) {
  if (ctx.ddp) ctx.ddp.detachHooks();
  if (ctx.group) ctx.group.destroySync();
}

function modelTargets() {
  const seqInput = (ctx, m) => {
    const T = ctx.rng.int(0, 3);
    const B = ctx.rng.int(1, 2);
    const x = m.batchFirst ? ctx.t([B, T, 3]) : ctx.t([T, B, 3]);
    const state = {};
    if (ctx.rng.next() < 0.3) state.seqLengths = ctx.i32(B, 0, T);
    return [x, state];
  };
  const forwardArgs = (ctx, m) => {
    if (m === ctx.nn.emb) return [ctx.ids(6, 0, 9), ctx.pick([[2, 3], undefined])];
    if (m === ctx.nn.lstm || m === ctx.nn.gru || m === ctx.nn.rnn) return seqInput(ctx, m);
    return [ctx.rng.next() < 0.5 ? ctx.t([2, 3]) : ctx.leaf([ctx.rng.int(0, 2), 3])];
  };
  const moduleOf = (name, ctx) => {
    switch (name) {
      case 'Linear': return ctx.nn.linear;
      case 'Embedding': return ctx.nn.emb;
      case 'Dropout': return ctx.nn.dropout;
      case 'RMSNorm': return ctx.nn.norm;
      case 'Sequential': return ctx.nn.seq;
      case 'RNNBase': return ctx.pick([ctx.nn.lstm, ctx.nn.gru, ctx.nn.rnn]);
      default: return ctx.module();
    }
  };
  const forwards = ['Module', 'Linear', 'Embedding', 'Dropout', 'RMSNorm', 'Sequential', 'RNNBase'].flatMap((k) => ['forward', 'forwardSync'].map((m) => ({
    name: `nn.${k}#${m}`, args: (ctx) => { const mod = moduleOf(k, ctx); return [mod, ...forwardArgs(ctx, mod)]; },
    call: (ctx, [mod, ...a]) => mod[m](...a), receiver: true,
  })));
  const unary = ['tanh', 'sigmoid', 'relu'].flatMap((f) => [f, `${f}Sync`].map((n) => ({
    name: `nn.${n}`, args: (ctx) => [ctx.rng.next() < 0.5 ? ctx.leaf([2, 2]) : ctx.t([3])], call: (ctx, a) => ctx.rk.nn[n](...a),
  })));
  const binary = ['add', 'mul'].flatMap((f) => [f, `${f}Sync`].map((n) => ({
    name: `nn.${n}`, args: (ctx) => [ctx.leaf([2, 3]), ctx.pick([ctx.t([2, 3]), ctx.t([3]), 2])], call: (ctx, a) => ctx.rk.nn[n](...a),
  })));
  const reductions = ['sum', 'mean'].flatMap((f) => [f, `${f}Sync`].map((n) => ({
    name: `nn.${n}`, args: (ctx) => [ctx.leaf([2, 3]), ctx.pick([{}, { axis: -1 }, { axis: 0, keepDims: true }])], call: (ctx, a) => ctx.rk.nn[n](...a),
  })));
  const lossArgs = (ctx, n) => (n.startsWith('cross')
    ? [ctx.leaf([4, 3]), ctx.ids(4, 0, 2), { reduction: ctx.pick(['mean', 'sum']) }]
    : [ctx.leaf([2, 2]), ctx.t([2, 2]), { reduction: 'mean' }]);
  const losses = ['crossEntropy', 'crossEntropySync', 'mseLoss', 'mseLossSync'].map((n) => ({
    name: `nn.${n}`, args: (ctx) => lossArgs(ctx, n), call: (ctx, a) => ctx.rk.nn[n](...a),
  }));
  const newModules = [
    ['Linear', (ctx) => [{ inFeatures: ctx.rng.int(1, 4), outFeatures: ctx.rng.int(1, 4), bias: true, seed: 1 }]],
    ['Embedding', (ctx) => [{ numEmbeddings: ctx.rng.int(1, 9), embeddingDim: ctx.rng.int(1, 4), seed: 1 }]],
    ['LSTM', (ctx) => [{ inputSize: 2, hiddenSize: ctx.rng.int(1, 3), numLayers: ctx.rng.int(1, 2), projSize: 0, peepholes: false, seed: 1 }]],
    ['GRU', (ctx) => [{ inputSize: 2, hiddenSize: 2, linearBeforeReset: ctx.rng.next() < 0.5, seed: 1 }]],
    ['RNN', (ctx) => [{ inputSize: 2, hiddenSize: 2, nonlinearity: ctx.pick(['tanh', 'relu']), seed: 1 }]],
    ['Dropout', (ctx) => [{ p: ctx.rng.uniform(0, 0.9), seed: 1 }]],
    ['RMSNorm', (ctx) => [{ normalizedShape: ctx.pick([3, [2, 2]]), eps: 1e-6, bias: ctx.rng.next() < 0.5 }]],
    ['Sequential', (ctx) => [new ctx.rk.nn.Linear({ inFeatures: 2, outFeatures: 2, seed: 1 }), new ctx.rk.nn.Dropout({ p: 0.1 })]],
    ['Module', () => []],
    ['RNNBase', () => ['lstm', { inputSize: 2, hiddenSize: 2 }, []]],
  ].map(([k, gen]) => ({ name: `new nn.${k}`, args: gen, call: (ctx, a) => new ctx.rk.nn[k](...a), noSuccess: k === 'RNNBase' }));
  const moduleMethods = [
    ['children', () => []], ['modules', () => []], ['namedChildren', () => []], ['namedModules', () => []], ['namedParameters', () => []],
    ['parameters', () => []], ['stateDict', () => []], ['train', (ctx) => [ctx.rng.next() < 0.5]], ['eval', () => []], ['to', () => ['cpu']],
    ['zeroGrad', (ctx) => [{ setToNone: ctx.rng.next() < 0.5 }]],
    ['loadStateDict', (ctx, m) => [m.stateDict(), { strict: ctx.rng.next() < 0.5 }]],
  ].map(([n, gen]) => ({
    name: `nn.Module#${n}`, args: (ctx) => { const m = ctx.module(); return [m, ...gen(ctx, m)]; }, call: (ctx, [m, ...a]) => m[n](...a), receiver: true,
  }));
  return [
    ...forwards, ...unary, ...binary, ...reductions, ...losses, ...newModules, ...moduleMethods,
    { name: 'nn.RNNBase#recurrent', args: (ctx) => [ctx.pick([ctx.nn.lstm, ctx.nn.gru, ctx.nn.rnn])], call: (ctx, [m]) => m.recurrent, receiver: true },
    { name: 'nn.Sequential#layers', args: (ctx) => [ctx.nn.seq], call: (ctx, [m]) => m.layers, receiver: true },
    ...['concat', 'concatSync'].map((n) => ({ name: `nn.${n}`, args: (ctx) => [[ctx.leaf([2, 3]), ctx.t([1, 3])], 0], call: (ctx, a) => ctx.rk.nn[n](...a) })),
    ...['narrow', 'narrowSync'].map((n) => ({ name: `nn.${n}`, args: (ctx) => [ctx.leaf([4, 3]), ctx.rng.int(0, 1), ctx.rng.int(0, 1), ctx.rng.int(0, 2)], call: (ctx, a) => ctx.rk.nn[n](...a) })),
    { name: 'nn.reshape', args: (ctx) => [ctx.leaf([2, 3]), [3, 2]], call: (ctx, a) => ctx.rk.nn.reshape(...a) },
    { name: 'nn.parameter', args: (ctx) => [ctx.t([2])], call: (ctx, a) => ctx.rk.nn.parameter(...a) },
    { name: 'nn.isParameter', args: (ctx) => [ctx.nn.linear.weight], call: (ctx, a) => ctx.rk.nn.isParameter(...a) },
    ...['nn', 'autograd'].flatMap((ns) => [
      // These run the caller's function: its own exception passes through unchanged.
      { name: `${ns}.noGrad`, args: (ctx) => [() => ctx.rk.nn.addSync(ctx.leaf([2]), 1)], call: (ctx, a) => ctx.rk[ns].noGrad(...a), userCode: true },
      { name: `${ns}.noGradSync`, args: (ctx) => [() => ctx.rk.nn.addSync(ctx.leaf([2]), 1)], call: (ctx, a) => ctx.rk[ns].noGradSync(...a), userCode: true },
      { name: `${ns}.enableGrad`, args: (ctx) => [() => ctx.rk.nn.addSync(ctx.leaf([2]), 1)], call: (ctx, a) => ctx.rk[ns].enableGrad(...a), userCode: true },
      { name: `${ns}.isGradEnabled`, args: () => [], call: (ctx) => ctx.rk[ns].isGradEnabled() },
      { name: `${ns}.setGradEnabled`, args: () => [true], call: (ctx, a) => { try { return ctx.rk[ns].setGradEnabled(...a); } finally { ctx.rk[ns].setGradEnabled(true); } } },
    ]),
    { name: 'autograd.queueCallback', args: () => [() => 1], call: (ctx, a) => ctx.rk.autograd.queueCallback(...a), noSuccess: true },
    // the tensor's autograd side
    ...['backward', 'backwardSync'].map((m) => ({ name: `Tensor#${m}`, args: (ctx) => [ctx.loss(), ctx.pick([{}, { retainGraph: true }])], call: (ctx, [t, ...a]) => t[m](...a), receiver: true })),
    {
      name: 'Tensor#registerPostAccumulateGradHook',
      args: (ctx) => [ctx.leaf([2, 3]), (p) => { if (!ctx.rk.autograd.isGradEnabled()) return; ctx.rk.autograd.queueCallback(() => p.grad); }],
      call: (ctx, [t, fn]) => {
        const remove = t.registerPostAccumulateGradHook(fn);
        const loss = ctx.rk.nn.sumSync(ctx.rk.nn.mulSync(t, 2));
        return loss.backward().finally(remove);
      },
      receiver: true, userCode: true,
    },
    ...['requiresGrad', 'isLeaf', 'version'].map((p) => ({ name: `Tensor#${p}`, args: (ctx) => [ctx.rng.next() < 0.5 ? ctx.t([2]) : ctx.loss()], call: (ctx, [t]) => t[p], receiver: true })),
    { name: 'Tensor#detach', args: (ctx) => [ctx.loss()], call: (ctx, [t]) => t.detach(), receiver: true },
    { name: 'Tensor#item', args: (ctx) => [ctx.rng.next() < 0.7 ? ctx.loss() : ctx.t([2])], call: (ctx, [t]) => t.item(), receiver: true },
    { name: 'Tensor#bumpVersion', args: (ctx) => [ctx.t([2])], call: (ctx, [t]) => t.bumpVersion(), receiver: true },
    { name: 'Tensor#sharesStorage', args: (ctx) => { const t = ctx.t([2, 2]); return [t, ctx.rng.next() < 0.5 ? t.reshape([4]) : ctx.t([4])]; }, call: (ctx, [t, o]) => t.sharesStorage(o), receiver: true },
    { name: 'Tensor#setGradFn', args: (ctx) => { const l = ctx.loss(); return [ctx.t([1]), l.gradFn, 0]; }, call: (ctx, [t, ...a]) => t.setGradFn(...a), receiver: true },
    { name: 'Tensor.view', args: (ctx) => [ctx.t([6]), ctx.rng.int(0, 3), [ctx.rng.int(1, 3)]], call: (ctx, a) => ctx.rk.Tensor.view(...a) },
    { name: 'Optimizer#zeroGrad', args: (ctx) => [ctx.optimizer(), { setToNone: ctx.rng.next() < 0.5 }], call: (ctx, [o, ...a]) => o.zeroGrad(...a), receiver: true },
    { name: 'saveSafetensors', weight: 0.3, args: (ctx) => [path.join(ctx.dir, `nn${ctx.rng.int(0, 2)}.safetensors`), ctx.nn.linear.stateDict(), { note: 'fuzz' }], call: (ctx, a) => ctx.rk.saveSafetensors(...a) },
    {
      name: 'loadSafetensors', weight: 0.3,
      args: (ctx) => [ctx.pick([path.join(ctx.dir, 'nn0.safetensors'), path.join(ctx.checkpoints[0], 'model.safetensors'), ...ctx.checkpoints.slice(1, 8).map((d) => path.join(d, 'model.safetensors')), ctx.dir])],
      call: (ctx, a) => ctx.rk.loadSafetensors(...a),
    },
  ];
}

function distributedTargets() {
  const d = 'distributed';
  const withGroup = (ctx) => ctx.group;
  const groupMethod = (n, gen) => ({
    name: `${d}.ProcessGroup#${n}`, args: (ctx) => [ctx.group, ...gen(ctx)], call: (ctx, [g, ...a]) => g[n](...a), receiver: true, needs: withGroup,
  });
  const ddpMethod = (ns, n, gen) => ({
    name: `${ns}.DistributedDataParallel#${n}`, args: (ctx) => [ctx.ddp, ...gen(ctx)], call: (ctx, [m, ...a]) => m[n](...a), receiver: true,
    needs: (ctx) => ctx.ddp,
  });
  const groupOptions = (ctx) => [{ backend: ctx.pick(['gloo', 'auto']), worldSize: 1, rank: 0, timeoutMs: 2000 }];
  const reduceOptions = (ctx) => [ctx.t([3]), { op: ctx.pick(['sum', 'avg', 'max', 'min']) }];
  return [
    { name: `${d}.backends`, args: () => [], call: (ctx) => ctx.rk.distributed.backends() },
    { name: `${d}.backendStatus`, args: (ctx) => [ctx.pick(['gloo', 'mpi', 'nccl'])], call: (ctx, a) => ctx.rk.distributed.backendStatus(...a) },
    // A world of one: a real group when gloo is built (destroyed at once), else ERR_RNNKIT_DIST.
    { name: `${d}.initProcessGroup`, weight: 0.2, args: groupOptions, call: (ctx, a) => ctx.rk.distributed.initProcessGroup(...a).then((g) => g.destroy()), needs: withGroup },
    { name: `${d}.initProcessGroupSync`, weight: 0.2, args: groupOptions, call: (ctx, a) => ctx.rk.distributed.initProcessGroupSync(...a).destroySync(), needs: withGroup },
    { name: `new ${d}.ProcessGroup`, args: () => [{}, 'gloo', { rank: 0, worldSize: 1, description: '' }, 0, 1000], call: (ctx, a) => new ctx.rk.distributed.ProcessGroup(...a), noSuccess: true },
    ...['allReduce', 'allReduceSync'].map((n) => groupMethod(n, reduceOptions)),
    groupMethod('allReduceTagged', (ctx) => [ctx.t([2]), 0, ctx.rng.int(0, 9)]),
    ...['broadcast', 'broadcastSync'].map((n) => groupMethod(n, (ctx) => [ctx.t([2]), { src: 0 }])),
    groupMethod('broadcastTagged', (ctx) => [ctx.t([2]), 0, 1]),
    ...['allGather', 'allGatherSync'].map((n) => groupMethod(n, (ctx) => [ctx.t([ctx.rng.int(0, 2), 2])])),
    ...['barrier', 'barrierSync', 'toString'].map((n) => groupMethod(n, () => [])),
    // destroy on a group of its own: the shared one must stay usable.
    ...['destroy', 'destroySync'].map((n) => ({
      name: `${d}.ProcessGroup#${n}`, weight: 0.2, needs: withGroup, receiver: true,
      args: (ctx) => [ctx.rk.distributed.initProcessGroupSync({ backend: 'gloo', worldSize: 1, rank: 0 })], call: (ctx, [g]) => g[n](),
    })),
    ...['nn', d].flatMap((ns) => [
      {
        name: `new ${ns}.DistributedDataParallel`, needs: withGroup,
        args: (ctx) => [new ctx.rk.nn.Linear({ inFeatures: 2, outFeatures: 2, seed: 1 }), { processGroup: ctx.group, bucketMB: ctx.pick([1, 0.01]) }],
        call: (ctx, a) => new ctx.rk[ns].DistributedDataParallel(...a).detachHooks(),
      },
      ...['forward', 'forwardSync'].map((n) => ddpMethod(ns, n, (ctx) => [ctx.t([2, 3])])),
      { ...ddpMethod(ns, 'processGroup', () => []), call: (ctx, [m]) => m.processGroup },
      { ...ddpMethod(ns, 'detachHooks', () => []), args: (ctx) => [new ctx.rk.distributed.DistributedDataParallel(new ctx.rk.nn.Linear({ inFeatures: 2, outFeatures: 2, seed: 1 }), { processGroup: ctx.group })], needs: withGroup },
    ]),
    { name: `new ${d}.DistributedSampler`, args: (ctx) => [ctx.rng.int(0, 20), { numReplicas: ctx.rng.int(1, 3), rank: 0, shuffle: true, seed: 3, dropLast: ctx.rng.next() < 0.5 }], call: (ctx, a) => new ctx.rk.distributed.DistributedSampler(...a) },
    ...[['setEpoch', (ctx) => [ctx.rng.int(0, 9)]], ['indices', () => []], ['[Symbol.iterator]', () => []]].map(([n, gen]) => ({
      name: `${d}.DistributedSampler#${n}`, receiver: true,
      args: (ctx) => [new ctx.rk.distributed.DistributedSampler(10, { numReplicas: 2, rank: 1 }), ...gen(ctx)],
      call: (ctx, [s, ...a]) => (n === '[Symbol.iterator]' ? [...s] : s[n](...a)),
    })),
  ];
}

module.exports = { addModelContext, closeModelContext, modelTargets, distributedTargets };
