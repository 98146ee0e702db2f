/**
 * safetensors encoder and decoder (the format of Hugging Face's safetensors, read by PyTorch's
 * `safetensors.torch.load_file`): an 8-byte little-endian header length N, N bytes of JSON
 * `{ name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { key: string } }`
 * padded with spaces to a multiple of 8, then the raw little-endian tensor bytes, each tensor's
 * offsets relative to the start of that data.
 *
 * Writing: float32 tensors ("F32"), in the order given, packed back to back. Reading: F32 as is,
 * F64 / F16 / BF16 converted to float32; the header is checked (length within the file, JSON
 * object, known dtype, shape of non-negative integers, offsets that match the shape and tile the
 * data exactly with no gap or overlap) so a damaged file gives an RnnkitError, not garbage.
 */
import { types } from 'util';
import { RnnkitError } from '../errors';
import { allocFloats, checkHostAllocation, isInstance, readGuarded, readRecord, readShape } from '../args';

/** One float32 tensor of a safetensors file. */
export interface SafetensorsEntry {
  /** Its shape. */
  shape: number[];
  /** Its values, row-major. */
  data: Float32Array;
}

/** A decoded safetensors file. */
export interface SafetensorsFile {
  /** The tensors, by name. */
  tensors: Record<string, SafetensorsEntry>;
  /** The string-to-string `__metadata__` table. */
  metadata: Record<string, string>;
}

const DTYPE_BYTES: Record<string, number> = { F32: 4, F64: 8, F16: 2, BF16: 2 };
// Headers beyond this are refused (the reference implementation's limit is 100 MB).
const MAX_HEADER = 100_000_000;
// Typed arrays are host-endian and the file is little-endian: bytes are copied as they are only
// on little-endian hosts.
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function bad(message: string): RnnkitError {
  return new RnnkitError('ERR_RNNKIT_ARG', `safetensors: ${message}`);
}

function shapeSize(shape: unknown, name: string): number {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw bad(`tensor ${name} has a bad shape ${JSON.stringify(shape)}`);
  }
  return shape.reduce((a: number, b: number) => a * b, 1);
}

/** Encodes float32 tensors (and string metadata) as a safetensors file. */
export function encodeSafetensors(tensors: Record<string, SafetensorsEntry>, metadata: Record<string, string> = {}): Buffer {
  const header: Record<string, unknown> = {};
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(readRecord(metadata, 'safetensors metadata'))) {
    if (typeof v !== 'string') throw new RnnkitError('ERR_RNNKIT_ARG', `safetensors metadata ${k} must be a string`);
    meta[k] = v;
  }
  if (Object.keys(meta).length) header.__metadata__ = meta;
  let offset = 0;
  const parts: Array<{ data: Float32Array }> = [];
  for (const [name, entry] of Object.entries(readRecord(tensors, 'safetensors tensors'))) {
    if (name === '__metadata__') throw new RnnkitError('ERR_RNNKIT_ARG', 'safetensors: __metadata__ is not a tensor name');
    const t = readRecord(entry, `safetensors tensor ${name}`);
    if (!isInstance(t.data, Float32Array)) {
      throw new RnnkitError('ERR_RNNKIT_DTYPE', `safetensors: ${name} must hold a Float32Array`);
    }
    const { dims, size } = readShape(t.shape, `safetensors: the shape of ${name}`);
    if (size !== t.data.length) throw new RnnkitError('ERR_RNNKIT_SHAPE', `safetensors: ${name} has shape [${dims.join(', ')}] but ${t.data.length} values`);
    header[name] = { dtype: 'F32', shape: dims, data_offsets: [offset, offset + 4 * size] };
    offset += 4 * size;
    parts.push({ data: t.data });
  }
  let json = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) json = Buffer.concat([json, Buffer.alloc(padded - json.length, 0x20)]);
  checkHostAllocation('encodeSafetensors', [{ what: 'the file', floats: Math.ceil((8 + json.length + offset) / 4) }]);
  const out = Buffer.alloc(8 + json.length + offset);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  let at = 8 + json.length;
  for (const p of parts) {
    const bytes = Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength);
    if (bytes.length) {
      if (LITTLE_ENDIAN) bytes.copy(out, at);
      else for (let k = 0; k < p.data.length; k++) out.writeFloatLE(p.data[k], at + 4 * k);
    }
    at += bytes.length;
  }
  return out;
}

function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function decodeData(buf: Buffer, begin: number, dtype: string, size: number): Float32Array {
  const out = allocFloats(size, 'a tensor', 'decodeSafetensors');
  switch (dtype) {
    case 'F32':
      if (LITTLE_ENDIAN) new Uint8Array(out.buffer).set(buf.subarray(begin, begin + 4 * size));
      else for (let k = 0; k < size; k++) out[k] = buf.readFloatLE(begin + 4 * k);
      break;
    case 'F64':
      for (let k = 0; k < size; k++) out[k] = buf.readDoubleLE(begin + 8 * k);
      break;
    case 'F16':
      for (let k = 0; k < size; k++) out[k] = halfToFloat(buf.readUInt16LE(begin + 2 * k));
      break;
    default: {
      // BF16 is the high half of a float32.
      const u = new Uint32Array(out.buffer);
      for (let k = 0; k < size; k++) u[k] = buf.readUInt16LE(begin + 2 * k) << 16;
    }
  }
  return out;
}

/** Decodes a safetensors file; every tensor comes back as float32. */
export function decodeSafetensors(buf: Buffer): SafetensorsFile {
  if (types.isProxy(buf) || !readGuarded(() => Buffer.isBuffer(buf), 'the buffer')) throw new RnnkitError('ERR_RNNKIT_ARG', 'safetensors: expected a Buffer');
  if (buf.length < 8) throw bad('file shorter than its 8-byte header length');
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(Math.min(MAX_HEADER, buf.length - 8))) throw bad(`header length ${n} exceeds the file (${buf.length} bytes)`);
  const headerLen = Number(n);
  let header: unknown;
  try {
    header = JSON.parse(buf.toString('utf8', 8, 8 + headerLen));
  } catch (err) {
    throw bad(`header is not JSON (${(err as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw bad('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const metadata: Record<string, string> = {};
  const spans: Array<{ name: string; begin: number; end: number; dtype: string; shape: number[] }> = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object') throw bad('__metadata__ is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') throw bad(`metadata ${k} is not a string`);
        Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
      }
      continue;
    }
    const e = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') throw bad(`entry ${name} is not an object`);
    if (typeof e.dtype !== 'string' || !(e.dtype in DTYPE_BYTES)) {
      throw new RnnkitError('ERR_RNNKIT_DTYPE', `safetensors: tensor ${name} has dtype ${String(e.dtype)}; rnnkit reads F32, F64, F16 and BF16`);
    }
    const size = shapeSize(e.shape, name);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((v) => Number.isSafeInteger(v) && v >= 0) || off[0] > off[1]) {
      throw bad(`tensor ${name} has bad data_offsets ${JSON.stringify(off)}`);
    }
    if (off[1] - off[0] !== size * DTYPE_BYTES[e.dtype]) throw bad(`tensor ${name}: data_offsets do not match its shape and dtype`);
    if (off[1] > dataLen) throw bad(`tensor ${name} ends past the end of the file`);
    spans.push({ name, begin: off[0], end: off[1], dtype: e.dtype, shape: (e.shape as number[]).slice() });
  }
  const sorted = spans.slice().sort((a, b) => a.begin - b.begin || a.end - b.end);
  let expect = 0;
  for (const s of sorted) {
    if (s.begin !== expect) throw bad(`tensor ${s.name} starts at ${s.begin}, expected ${expect} (gap or overlap)`);
    expect = s.end;
  }
  if (expect !== dataLen) throw bad(`the tensors cover ${expect} of ${dataLen} data bytes`);
  const tensors: Record<string, SafetensorsEntry> = {};
  for (const s of spans) {
    const entry = { shape: s.shape, data: decodeData(buf, dataStart + s.begin, s.dtype, shapeSize(s.shape, s.name)) };
    Object.defineProperty(tensors, s.name, { value: entry, enumerable: true, writable: true, configurable: true });
  }
  return { tensors, metadata };
}
