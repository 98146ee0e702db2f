'use strict';
// After a storm of hostile calls, the library still computes correct results: fresh inputs
// through matmul, the Recurrent op (forward and backward), RMSNorm, cross-entropy, an optimizer
// step and a step net, each against the float64 references of test/reference/ (or, for the
// step net, against the Recurrent op it spells out), Linear and the model layer's autograd through
// nn.Linear, on the sync and the async path.
const recurrentRef = require('../reference/recurrent');
const rmsRef = require('../reference/rmsnorm');
const trainRef = require('../reference/train');

const { expectClose } = require('../support/close');
const { matmulReference } = require('../support/matmul');

async function verifyMatmul(rk, rng) {
  const [M, K, N] = [7, 9, 5];
  const a = Float32Array.from(rng.array(M * K));
  const b = Float32Array.from(rng.array(K * N));
  const want = matmulReference(a, b, M, N, K).c;
  expectClose(rk.matmulSync(rk.tensor(a, [M, K]), rk.tensor(b, [K, N])).data, want, { rel: 1e-5, scale: 'max', what: 'after the storm, matmulSync' });
  expectClose((await rk.matmul(rk.tensor(a, [M, K]), rk.tensor(b, [K, N]))).data, want, { rel: 1e-5, scale: 'max', what: 'after the storm, matmul' });
}

async function verifyRecurrent(rk, rng) {
  const cfg = { mode: 'lstm', inputSize: 3, hiddenSize: 4, numLayers: 2, bidirectional: true };
  const [T, B] = [5, 2];
  const op = new rk.Recurrent({ ...cfg, device: 'cpu', seed: 11 });
  const weights = op.weights.data.slice();
  const x = Float32Array.from(rng.array(T * B * 3));
  const f = await op.forward(rk.tensor(x, [T, B, 3]), { training: true });
  const inputs = { x, weights, T, B };
  const want = recurrentRef.recurrentForward(cfg, inputs);
  expectClose(f.y.data, want.y, { rel: 1e-5, scale: 'max', what: 'after the storm, Recurrent y' });
  expectClose(f.hy.data, want.hy, { rel: 1e-5, scale: 'max', what: 'after the storm, Recurrent hy' });
  const dy = Float32Array.from(rng.array(f.y.size));
  const g = op.backwardSync(f.saved, { dy: rk.tensor(dy, f.y.shape) });
  const wantG = recurrentRef.recurrentBackward(cfg, inputs, { dy });
  expectClose(g.dx.data, wantG.dx, { rel: 1e-4, scale: 'max', what: 'after the storm, Recurrent dx' });
  expectClose(g.dweights.data, wantG.dweights, { rel: 1e-4, scale: 'max', what: 'after the storm, Recurrent dweights' });
  op.dispose();
}

async function verifyRmsNorm(rk, rng) {
  const [rows, cols] = [4, 6];
  const x = Float32Array.from(rng.array(rows * cols));
  const gamma = Float32Array.from(rng.array(cols));
  const beta = Float32Array.from(rng.array(cols));
  const norm = new rk.RMSNorm({ size: cols, eps: 1e-5, gamma, beta });
  const f = await norm.forward(rk.tensor(x, [rows, cols]));
  const want = rmsRef.forward(x, gamma, beta, rows, cols, 1e-5);
  expectClose(f.y.data, want.y, { rel: 1e-5, scale: 'max', what: 'after the storm, RMSNorm y' });
  const dy = Float32Array.from(rng.array(rows * cols));
  const g = norm.backwardSync({ x: rk.tensor(x, [rows, cols]), rrms: f.rrms, dy: rk.tensor(dy, [rows, cols]) });
  const wantG = rmsRef.backward(dy, x, gamma, rows, cols, 1e-5);
  expectClose(g.dx.data, wantG.dx, { rel: 1e-4, scale: 'max', what: 'after the storm, RMSNorm dx' });
  expectClose(g.dgamma.data, wantG.dgamma, { rel: 1e-4, scale: 'max', what: 'after the storm, RMSNorm dgamma' });
}

async function verifyTraining(rk, rng) {
  const [N, V] = [6, 5];
  const logits = Float32Array.from(rng.array(N * V, -3, 3));
  const targets = Int32Array.from({ length: N }, () => rng.int(0, V - 1));
  const ce = await rk.crossEntropy(rk.tensor(logits, [N, V]), targets);
  const want = trainRef.crossEntropy(logits, targets, V);
  expectClose([ce.loss], [want.loss], { rel: 1e-6, scale: 'max', what: 'after the storm, crossEntropy loss' });
  expectClose(ce.dlogits.data, want.dlogits, { rel: 1e-5, scale: 'max', what: 'after the storm, crossEntropy dlogits' });
  const p = Float32Array.from(rng.array(8));
  const g = Float32Array.from(rng.array(8));
  const param = rk.tensor(p.slice(), [8]);
  const h = { lr: 0.01, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0, amsgrad: false };
  const adam = new rk.Adam([param], { lr: h.lr });
  await adam.step([rk.tensor(g, [8])]);
  expectClose(param.data, trainRef.adamStep(p, g, { step: 0 }, h, false).p, { rel: 1e-6, scale: 'max', what: 'after the storm, Adam step' });
}

/** A step net that spells out an LSTM layer gives the Recurrent op's result. */
function verifyStepNet(rk, rng) {
  const [T, B, I, H] = [4, 2, 3, 2];
  const op = new rk.Recurrent({ mode: 'lstm', inputSize: I, hiddenSize: H, device: 'cpu', seed: 5 });
  const p = (kind) => op.getParam({ layer: 0, direction: 0, kind });
  const b = new rk.StepNetBuilder();
  b.input('x', I);
  b.state('h', H);
  b.state('c', H);
  b.param('W_ih', p('w_ih'));
  b.param('W_hh', p('w_hh'));
  b.param('b_ih', p('b_ih'));
  b.param('b_hh', p('b_hh'));
  b.link('x_t', 'x');
  b.link('h_prev', 'h');
  b.link('c_prev', 'c');
  b.fc('gx', 'x_t', 'W_ih', 'b_ih');
  b.fc('gh', 'h_prev', 'W_hh', 'b_hh');
  b.add('gates', 'gx', 'gh');
  b.lstmUnit(['h_t', 'c_t'], 'gates', 'c_prev');
  b.link('h_t', 'h', { offset: 1 });
  b.link('c_t', 'c', { offset: 1 });
  b.alias('y', 'h', 1);
  const x = rk.tensor(Float32Array.from(rng.array(T * B * I)), [T, B, I]);
  const got = b.build().forwardSync({ x }).outputs.y.data;
  expectClose(got, op.forwardSync(x).y.data, { rel: 1e-5, scale: 'max', what: 'after the storm, step-net LSTM against Recurrent' });
}

/**
 * Linear (x Wᵀ + b) against the float64 product, and the model layer's autograd: the gradients of
 * sum(nn.Linear(x)) are dW[o][i] = Σₙ x[n][i], db[o] = N, dx[n][i] = Σₒ W[o][i].
 */
async function verifyLinear(rk, rng) {
  const [N, I, O] = [5, 4, 3];
  const x = Float32Array.from(rng.array(N * I));
  const lin = new rk.Linear({ inFeatures: I, outFeatures: O, seed: 21 });
  const { weight, bias } = lin.parameters();
  const wt = new Float64Array(I * O);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) wt[i * O + o] = weight.data[o * I + i];
  const want = matmulReference(x, wt, N, O, I).c;
  for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) want[n * O + o] += bias.data[o];
  expectClose((await lin.forward(rk.tensor(x, [N, I]))).data, want, { rel: 1e-5, scale: 'max', what: 'after the storm, Linear forward' });
  const m = new rk.nn.Linear({ inFeatures: I, outFeatures: O, seed: 22 });
  const xt = rk.tensor(x, [N, I]);
  xt.requiresGrad = true;
  const loss = await rk.nn.sum(await m.forward(xt));
  await loss.backward();
  const W = m.weight.data;
  const dW = new Float64Array(O * I);
  const dx = new Float64Array(N * I);
  for (let o = 0; o < O; o++) for (let i = 0; i < I; i++) for (let n = 0; n < N; n++) dW[o * I + i] += x[n * I + i];
  for (let n = 0; n < N; n++) for (let i = 0; i < I; i++) for (let o = 0; o < O; o++) dx[n * I + i] += W[o * I + i];
  expectClose(m.weight.grad.data, dW, { rel: 1e-5, scale: 'max', what: 'after the storm, nn.Linear dweight (autograd)' });
  expectClose(m.bias.grad.data, new Float64Array(O).fill(N), { rel: 1e-6, scale: 'max', what: 'after the storm, nn.Linear dbias (autograd)' });
  expectClose(xt.grad.data, dx, { rel: 1e-5, scale: 'max', what: 'after the storm, nn.Linear dx (autograd)' });
}

/** Throws naming the first result that is off. */
async function verify(rk, rng) {
  await verifyMatmul(rk, rng);
  await verifyRecurrent(rk, rng);
  await verifyRmsNorm(rk, rng);
  await verifyTraining(rk, rng);
  await verifyLinear(rk, rng);
  verifyStepNet(rk, rng);
}

module.exports = { verify };
