'use strict';
// ONNX model bytes for the recurrent bench's onnxruntime peer: one LSTM / GRU / RNN node per
// layer, weights as initializers taken from Recurrent.exportWeights('onnx'), layers joined by
// Transpose + Reshape (ONNX's Y is [T, D, B, H]; the next layer reads [T, B, D·H]). The bytes
// come from a minimal protobuf writer for the few messages a model needs (field numbers from
// onnx/onnx.proto): ModelProto, GraphProto, NodeProto, AttributeProto, TensorProto,
// ValueInfoProto, TypeProto, TensorShapeProto. Bench only; not part of the library.

const WIRE_VARINT = 0;
const WIRE_BYTES = 2;
const FLOAT = 1; // TensorProto.DataType
const INT64 = 7;
const ATTR_INT = 2; // AttributeProto.AttributeType
const ATTR_STRING = 3;

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

function attrString(name, s) {
  return msg(strField(1, name), bytesField(4, Buffer.from(s, 'utf8')), intField(20, ATTR_STRING));
}

function nodeProto(op, inputs, outputs, name, attrs) {
  return msg(inputs.map((s) => strField(1, s)), outputs.map((s) => strField(2, s)), strField(3, name), strField(4, op),
    attrs.map((a) => bytesField(5, a)));
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
  const graph = msg(nodes.map((n) => bytesField(1, n)), strField(2, 'rnnkit_bench'),
    inits.map((t) => bytesField(5, t)), bytesField(11, valueInfo('x', [T, B, op.inputSize])),
    bytesField(12, valueInfo('y', [T, B, D * H])));
  const opset = msg(strField(1, ''), intField(2, 14));
  return msg(intField(1, 7), strField(2, 'rnnkit-bench'), bytesField(7, graph), bytesField(8, opset));
}

module.exports = { recurrentModel };
