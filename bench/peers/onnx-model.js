'use strict';
// ONNX model bytes for the bench's onnxruntime peers:
//  - recurrentModel: one LSTM / GRU / RNN node per layer, weights as initializers taken from
//    Recurrent.exportWeights('onnx'), layers joined by Transpose + Reshape (ONNX's Y is
//    [T, D, B, H]; the next layer reads [T, B, D·H]);
//  - matmulModel: y = a · op(B) with B a constant initializer (Gemm or MatMul);
//  - rmsnormModel: y = x / sqrt(mean(x², last axis) + eps) · gamma + beta (RMSNormalization,
//    SimplifiedLayerNormalization + Add, or the plain Pow / ReduceMean / ... composition).
// The bytes come from a minimal protobuf writer for the few messages a model needs (field
// numbers from onnx/onnx.proto): ModelProto, GraphProto, NodeProto, AttributeProto,
// TensorProto, ValueInfoProto, TypeProto, TensorShapeProto, OperatorSetIdProto.
// Bench only; not part of the library.

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;
const FLOAT = 1; // TensorProto.DataType
const INT64 = 7;
const ATTR_FLOAT = 1; // AttributeProto.AttributeType
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

function varint(n) {
  const out = [];
  let v = BigInt.asUintN(64, BigInt(n));
  do {
    let byte = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) byte |= 0x80;
    out.push(byte);
  } while (v !== 0n);
  return Buffer.from(out);
}

const key = (field, wire) => varint((field << 3) | wire);
const intField = (field, n) => Buffer.concat([key(field, WIRE_VARINT), varint(n)]);
function bytesField(field, bytes) {
  const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes);
  return Buffer.concat([key(field, WIRE_BYTES), varint(b.length), b]);
}
const strField = (field, s) => bytesField(field, Buffer.from(s, 'utf8'));
const msg = (...parts) => Buffer.concat(parts.flat());

function tensorProto(name, dims, data) {
  const isInt = data instanceof BigInt64Array;
  const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return msg(dims.map((d) => intField(1, d)), intField(2, isInt ? INT64 : FLOAT), strField(8, name), bytesField(9, raw));
}

function valueInfo(name, dims) {
  const shape = msg(dims.map((d) => bytesField(1, intField(1, d))));
  const tensorType = msg(intField(1, FLOAT), bytesField(2, shape));
  return msg(strField(1, name), bytesField(2, bytesField(1, tensorType)));
}

function attrInt(name, v) {
  return msg(strField(1, name), intField(3, v), intField(20, ATTR_INT));
}

function attrFloat(name, v) {
  const f = Buffer.alloc(4);
  f.writeFloatLE(v);
  return msg(strField(1, name), key(2, WIRE_FIXED32), f, intField(20, ATTR_FLOAT));
}

function attrInts(name, vs) {
  return msg(strField(1, name), vs.map((v) => intField(8, v)), intField(20, ATTR_INTS));
}

function attrString(name, s) {
  return msg(strField(1, name), bytesField(4, Buffer.from(s, 'utf8')), intField(20, ATTR_STRING));
}

function nodeProto(op, inputs, outputs, name, attrs) {
  return msg(inputs.map((s) => strField(1, s)), outputs.map((s) => strField(2, s)), strField(3, name), strField(4, op),
    attrs.map((a) => bytesField(5, a)));
}

/**
 * ModelProto bytes for one graph: `nodes` and `inits` (initializers) as encoded messages, `inputs` /
 * `outputs` as [name, dims] (float32), `opsets` as [domain, version] pairs.
 */
function modelProto({ nodes, inits, inputs, outputs, opsets, irVersion = 7 }) {
  const graph = msg(nodes.map((n) => bytesField(1, n)), strField(2, 'rnnkit_bench'),
    inits.map((t) => bytesField(5, t)), inputs.map(([n, d]) => bytesField(11, valueInfo(n, d))),
    outputs.map(([n, d]) => bytesField(12, valueInfo(n, d))));
  return msg(intField(1, irVersion), strField(2, 'rnnkit-bench'), bytesField(7, graph),
    opsets.map(([domain, version]) => bytesField(8, msg(strField(1, domain), intField(2, version)))));
}

const OP = { lstm: 'LSTM', gru: 'GRU', rnn_tanh: 'RNN', rnn_relu: 'RNN' };

/**
 * Model bytes computing y [T, B, D·H] from x [T, B, I] (zero initial states, full lengths) for a
 * Recurrent `op` (sequence-major, no projection / skip input; rnn_relu sets activations Relu).
 */
function recurrentModel(op, T, B) {
  const rec = op.exportWeights('onnx');
  const H = op.hiddenSize;
  const D = op.bidirectional ? 2 : 1;
  const G = { lstm: 4, gru: 3, rnn_tanh: 1, rnn_relu: 1 }[op.mode];
  const nodes = [];
  const inits = [];
  let input = 'x';
  for (let l = 0; l < op.numLayers; l++) {
    const sfx = op.numLayers > 1 ? `_l${l}` : '';
    const I = l === 0 ? op.inputSize : D * H;
    inits.push(tensorProto(`W${sfx}`, [D, G * H, I], rec[`W${sfx}`]));
    inits.push(tensorProto(`R${sfx}`, [D, G * H, H], rec[`R${sfx}`]));
    inits.push(tensorProto(`B${sfx}`, [D, 2 * G * H], rec[`B${sfx}`]));
    const attrs = [attrInt('hidden_size', H), attrString('direction', D === 2 ? 'bidirectional' : 'forward')];
    if (op.mode === 'gru') attrs.push(attrInt('linear_before_reset', op.linearBeforeReset ? 1 : 0));
    if (op.mode === 'rnn_relu') {
      attrs.push(msg(strField(1, 'activations'), Array(D).fill(0).map(() => bytesField(9, Buffer.from('Relu'))), intField(20, 8)));
    }
    const yl = `y4${sfx}`;
    nodes.push(nodeProto(OP[op.mode], [input, `W${sfx}`, `R${sfx}`, `B${sfx}`], [yl], `rnn${sfx}`, attrs));
    const last = l === op.numLayers - 1;
    const perm = `yt${sfx}`;
    nodes.push(nodeProto('Transpose', [yl], [perm], `transpose${sfx}`,
      [msg(strField(1, 'perm'), [0, 2, 1, 3].map((v) => intField(8, v)), intField(20, 7))]));
    inits.push(tensorProto(`shape${sfx}`, [3], BigInt64Array.from([T, B, D * H].map(BigInt))));
    input = last ? 'y' : `in${l + 1}`;
    nodes.push(nodeProto('Reshape', [perm, `shape${sfx}`], [input], `reshape${sfx}`, []));
  }
  return modelProto({ nodes, inits, inputs: [['x', [T, B, op.inputSize]]], outputs: [['y', [T, B, D * H]]], opsets: [['', 14]] });
}

const MATMUL_VARIANTS = ['matmul', 'gemm'];

/**
 * Model bytes computing y [M, N] = a [M, K] · op(b), b a constant initializer given as [N, K] when
 * `transB`, else [K, N]. variant 'gemm': one Gemm node (transB attribute, no C); 'matmul': one
 * MatMul node on b stored as [K, N] (transposed here when `transB`).
 */
function matmulModel({ M, N, K, transB = false, b, variant = 'matmul' }) {
  if (b.length !== K * N) throw new Error(`matmulModel: b has ${b.length} elements, want ${K * N}`);
  let node;
  let init;
  if (variant === 'gemm') {
    init = tensorProto('b', transB ? [N, K] : [K, N], b);
    node = nodeProto('Gemm', ['a', 'b'], ['y'], 'gemm', transB ? [attrInt('transB', 1)] : []);
  } else if (variant === 'matmul') {
    let bt = b;
    if (transB) {
      bt = new Float32Array(K * N);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) bt[k * N + n] = b[n * K + k];
    }
    init = tensorProto('b', [K, N], bt);
    node = nodeProto('MatMul', ['a', 'b'], ['y'], 'matmul', []);
  } else {
    throw new Error(`matmulModel: unknown variant ${variant} (${MATMUL_VARIANTS.join(', ')})`);
  }
  return modelProto({ nodes: [node], inits: [init], inputs: [['a', [M, K]]], outputs: [['y', [M, N]]], opsets: [['', 13]] });
}

/** Fastest first: the fused op where ORT runs it, the plain composition last. */
const RMSNORM_VARIANTS = ['rmsnormalization', 'simplified', 'compose'];

/**
 * Model bytes computing y [rows, cols] = x / sqrt(mean(x², last axis) + eps) · gamma + beta from
 * x [rows, cols]; gamma, beta [cols] are initializers (beta may be null: no Add). variant
 * 'rmsnormalization': ONNX RMSNormalization (opset 23) + Add; 'simplified': onnxruntime's
 * SimplifiedLayerNormalization (a contrib op registered in the default domain) + Add; 'compose':
 * Pow / ReduceMean / Add / Sqrt / Div / Mul / Mul / Add (opset 17).
 */
function rmsnormModel({ rows, cols, gamma, beta = null, eps = 1e-6, variant = 'rmsnormalization' }) {
  const inits = [tensorProto('gamma', [cols], gamma)];
  if (beta) inits.push(tensorProto('beta', [cols], beta));
  const nodes = [];
  const scaled = beta ? 'scaled' : 'y';
  let opsets = [['', 17]];
  let irVersion = 8;
  if (variant === 'rmsnormalization') {
    nodes.push(nodeProto('RMSNormalization', ['x', 'gamma'], [scaled], 'rmsnorm',
      [attrInt('axis', -1), attrFloat('epsilon', eps)]));
    opsets = [['', 23]];
    irVersion = 11;
  } else if (variant === 'simplified') {
    nodes.push(nodeProto('SimplifiedLayerNormalization', ['x', 'gamma'], [scaled], 'rmsnorm',
      [attrInt('axis', -1), attrFloat('epsilon', eps)]));
  } else if (variant === 'compose') {
    inits.push(tensorProto('two', [], new Float32Array([2])), tensorProto('eps', [], new Float32Array([eps])));
    nodes.push(
      nodeProto('Pow', ['x', 'two'], ['sq'], 'pow', []),
      nodeProto('ReduceMean', ['sq'], ['ms'], 'mean', [attrInts('axes', [-1]), attrInt('keepdims', 1)]),
      nodeProto('Add', ['ms', 'eps'], ['mse'], 'add_eps', []),
      nodeProto('Sqrt', ['mse'], ['rms'], 'sqrt', []),
      nodeProto('Div', ['x', 'rms'], ['xn'], 'div', []),
      nodeProto('Mul', ['xn', 'gamma'], [scaled], 'scale', []));
  } else {
    throw new Error(`rmsnormModel: unknown variant ${variant} (${RMSNORM_VARIANTS.join(', ')})`);
  }
  if (beta) nodes.push(nodeProto('Add', [scaled, 'beta'], ['y'], 'shift', []));
  return modelProto({ nodes, inits, inputs: [['x', [rows, cols]]], outputs: [['y', [rows, cols]]], opsets, irVersion });
}

module.exports = { recurrentModel, matmulModel, rmsnormModel, MATMUL_VARIANTS, RMSNORM_VARIANTS };
