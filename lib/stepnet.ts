/**
 * RecurrentNetwork: Caffe2's generic step-net operator (RecurrentNetwork, its gradient, links,
 * offset aliases, the RNN executor and the blob fetcher) over native/kernels/stepnet.h.
 *
 * Contract:
 * - A step net is declared once, with `StepNetBuilder` or as a `StepNetSpec` object, and compiled
 *   natively when the RecurrentNetwork is constructed: unknown blobs, size mismatches, cycles
 *   within a step and links out of range throw RnnkitError (ERR_RNNKIT_ARG / ERR_RNNKIT_SHAPE)
 *   naming the blob. No JavaScript runs per timestep.
 * - `forward(inputs, { seqLengths, training, steps, executor })`: `inputs` maps each input name to a
 *   [T_in, B, size] tensor and may map a state name to its initial value ([size], [B, size] or
 *   [k, B, size]; zeros when absent). Returns `{ outputs, saved }` with one tensor per alias
 *   ([slots, B, size]); `saved` (always returned: it also serves fetchBlob) keeps the forward's
 *   per-step blobs natively; `saved.release()` frees them early.
 * - `backward(saved, grads)`: `grads` maps alias names to gradients of their outputs (absent ones
 *   are zero). Returns `{ inputs, params }`: gradients of every input sequence, of every state that
 *   had an initial value (same shape as that value), and of every parameter; all new tensors.
 *   The inputs and parameters must not change between forward and backward.
 * - `fetchBlob(name, step, saved?)`: the value of any stored blob at a step, [B, size] (or
 *   [window, B, size] for windowed blobs), from `saved` or the latest forward.
 * - Tensors are CPU float32; CUDA inputs are read back and the op runs on the CPU.
 *
 * Examples: [RecurrentNetwork](../README.md#recurrentnetwork-step-nets), [docs/stepnet.md](../docs/stepnet.md).
 * @module
 */
import { RnnkitError } from './errors';
import { NativeStepNet, NativeStepWorkspace, native } from './native';
import { Tensor, checkTensor } from './tensor';
import {
  Allocation, allocFloats, argError, checkHostAllocation, describe, isInstance, readArray, readChoice, readGuarded, readInteger, readOptions,
  readRecord, readRequiredOptions, readSeqLengths, shapeError,
} from './args';

/**
 * The built-in row-wise ops of a step net: `fc` (y = x·Wᵀ + b, W [N, K]), `matmul` (fc without a
 * bias), elementwise `add` `sub` `mul` `sigmoid` `tanh` `relu` `copy`, `concat` `slice` `split`
 * (along the features or the window axis), the fused cells `lstmUnit` and `gruUnit`, and `rmsNorm`.
 */
export type StepOpType = 'fc' | 'matmul' | 'add' | 'sub' | 'mul' | 'sigmoid' | 'tanh' | 'relu' | 'concat'
  | 'slice' | 'split' | 'copy' | 'lstmUnit' | 'gruUnit' | 'rmsNorm';

/** One op of a step net: its type, the blobs it reads and writes, and its arguments. */
export interface StepOpSpec {
  /** Which op. */
  type: StepOpType;
  /** The names of the blobs (or parameters) it reads, in the op's order (e.g. fc: x, W, b). */
  inputs: string[];
  /** The names of the blobs it writes (lstmUnit: [h, c]; split: one per part). */
  outputs: string[];
  /** concat / slice / split: 1 = features (default), 0 = the window axis. */
  axis?: 0 | 1;
  /** slice: the first index kept along `axis`. */
  start?: number;
  /** slice: one past the last index kept along `axis`. */
  end?: number;
  /** split: the size of each part along `axis` (absent: equal parts). */
  sizes?: number[];
  /** rmsNorm: added to the mean square before the square root (default 1e-6). */
  eps?: number;
  /** gruUnit: true (default) is the cuDNN / PyTorch form, false the ONNX default form. */
  linearBeforeReset?: boolean;
}

/**
 * A step net as a plain object (what `StepNetBuilder.toSpec()` returns): the external sequences,
 * the parameters, the links between them and the per-step blobs, the ops of one step, and the
 * aliases that expose states as outputs. docs/stepnet.md describes the semantics.
 */
export interface StepNetSpec {
  /** Input sequences, each [T_in, B, size]. */
  inputs?: {
    /** The name `forward`'s inputs record uses. */
    name: string;
    /** Features per row. */
    size: number;
  }[];
  /** Recurrent states, each [T + initSteps, B, size]: the first initSteps slots hold the initial value. */
  states?: {
    /** The name of the state (an initial value is passed under it to `forward`). */
    name: string;
    /** Features per row. */
    size: number;
    /** Slots before step 0 holding the initial value (default 1). */
    initSteps?: number;
  }[];
  /** The parameters by name: whole tensors shared by every step. */
  params?: Record<string, Tensor>;
  /** Per-step views: at step t, `internal` is external[t + offset … t + offset + window) (zero copy). */
  links?: {
    /** The per-step blob the ops see. */
    internal: string;
    /** The input or state it views. */
    external: string;
    /** Slot offset from t (default 0); a state's write link has offset initSteps. */
    offset?: number;
    /** Slots seen at once (default 1). */
    window?: number;
  }[];
  /** The ops of one step, in any order (they are sorted by their dependencies; a cycle throws). */
  ops?: StepOpSpec[];
  /** The outputs of `forward`: a state's slots from `offset` on (offset >= 0) or its last −offset slots (offset < 0). */
  aliases?: {
    /** The state exposed. */
    src: string;
    /** The output's name in `forward`'s outputs and `backward`'s gradients. */
    dst: string;
    /** First slot exposed (>= 0), or minus the number of final slots (< 0). */
    offset: number;
  }[];
  /** Blobs kept in one buffer instead of one per step and recomputed in backward (not fetchable). */
  recompute?: string[];
  /** The name of the [1, B, 1] blob holding the step index t (default 'timestep'). */
  timestep?: string;
}

/**
 * How the steps run: 'sequential' step by step, each kernel using the compute pool; 'wavefront'
 * the (step, op) task graph on the pool so that independent work of different steps overlaps;
 * 'auto' (default) the wavefront when the graph is wide enough and more than one thread is set.
 */
export type StepExecutor = 'auto' | 'sequential' | 'wavefront';

/** Options of `RecurrentNetwork.forward`. */
export interface StepForwardOptions {
  /** B lengths in 0..T: at steps t >= len[b] row b of every state keeps its value (all T when absent). */
  seqLengths?: Int32Array | null;
  /** Number of steps T (default: the first input's length). */
  steps?: number;
  /** Kept for symmetry with Recurrent: the forward always keeps what backward and fetchBlob need. */
  training?: boolean;
  /** How the steps run (default 'auto'). */
  executor?: StepExecutor;
}

/** A blob of the compiled net with its per-step shape [window, B, size]. */
export interface BlobDescription {
  /** The blob's name. */
  name: string;
  /**
   * What it is: a per-step view of an input (`input_link`), a read or the write view of a state
   * (`state_read`, `state_write`), a blob an op computes (`step`), a parameter, or the timestep.
   */
  kind: 'input_link' | 'state_read' | 'state_write' | 'step' | 'param' | 'timestep';
  /** Slots per step (1 unless the blob comes from a windowed link). */
  window: number;
  /** Features per row. */
  size: number;
  /** Whether its value at every step is kept (what `fetchBlob` can read; false for recomputed blobs). */
  stored: boolean;
  /** Whether the op computing it was hoisted out of the time loop (it reads input sequences only). */
  hoisted: boolean;
}

const EXECUTORS: readonly StepExecutor[] = ['auto', 'sequential', 'wavefront'];
const SPEC_KEYS = ['inputs', 'states', 'params', 'links', 'ops', 'aliases', 'recompute', 'timestep'] as const;
/** The keys of each entry of a spec list. */
const ENTRY_KEYS = {
  inputs: ['name', 'size'],
  states: ['name', 'size', 'initSteps'],
  links: ['internal', 'external', 'offset', 'window'],
  ops: ['type', 'inputs', 'outputs', 'axis', 'start', 'end', 'sizes', 'eps', 'linearBeforeReset'],
  aliases: ['src', 'dst', 'offset'],
} as const;
const OP_ARG_KEYS = ['axis', 'start', 'end', 'sizes', 'eps', 'linearBeforeReset'] as const;
const FORWARD_KEYS = ['seqLengths', 'steps', 'training', 'executor'] as const;
const BACKWARD_KEYS = ['executor'] as const;

/**
 * A spec list (inputs, states, ...) as plain values for the compiler: each entry an object of the
 * allowed keys read once, its array fields (an op's inputs, outputs, sizes) copied.
 */
function specEntries<L extends keyof typeof ENTRY_KEYS>(v: unknown, list: L): NonNullable<StepNetSpec[L]> {
  if (v === undefined) return [];
  const entries: object[] = readArray(v, `spec.${list}`).map((e, i) => {
    const where = `spec.${list}[${i}]`;
    const o: Record<string, unknown> = { ...readRequiredOptions(e, ENTRY_KEYS[list], where, `${where} must be an object`) };
    for (const [k, value] of Object.entries(o)) {
      if (readGuarded(() => Array.isArray(value), `${where}.${k}`)) o[k] = readArray(value, `${where}.${k}`);
    }
    return o;
  });
  return entries as NonNullable<StepNetSpec[L]>;
}

/** Whether `v` is a saved of `net`'s forward (a caller's Proxy is not one). */
function isSavedOf(v: unknown, net: RecurrentNetwork): v is StepNetSaved {
  return isInstance(v, StepNetSaved) &&
    (v as StepNetSaved).owner === net;
}

const readExecutor = (o: { executor?: unknown }): StepExecutor => readChoice(o.executor, 'executor', EXECUTORS, 'auto');

/**
 * Builds a step net op by op. Every op method takes its output name(s) first and returns them.
 *
 * ```ts
 * const b = new StepNetBuilder();
 * b.input('x', I); b.state('h', H); b.state('c', H);
 * b.param('W_ih', wih); b.param('W_hh', whh); b.param('b_ih', bih); b.param('b_hh', bhh);
 * b.link('x_t', 'x'); b.link('h_prev', 'h'); b.link('c_prev', 'c');
 * b.fc('gx', 'x_t', 'W_ih', 'b_ih'); b.fc('gh', 'h_prev', 'W_hh', 'b_hh');
 * b.add('gates', 'gx', 'gh'); b.lstmUnit(['h_t', 'c_t'], 'gates', 'c_prev');
 * b.link('h_t', 'h', { offset: 1 }); b.link('c_t', 'c', { offset: 1 });
 * b.alias('y', 'h', 1); b.alias('hy', 'h', -1);
 * const net = b.build();
 * const { outputs, saved } = await net.forward({ x, h: h0, c: c0 });
 * const grads = await net.backward(saved, { y: dy });
 * ```
 */
export class StepNetBuilder {
  private readonly spec: Required<StepNetSpec> = {
    inputs: [], states: [], params: {}, links: [], ops: [], aliases: [], recompute: [], timestep: 'timestep',
  };

  /** An input sequence [T_in, B, size]. */
  input(name: string, size: number): string {
    this.spec.inputs.push({ name, size });
    return name;
  }
  /** A recurrent state [T + initSteps, B, size]; the first initSteps slots hold its initial value. */
  state(name: string, size: number, options?: { initSteps?: number }): string {
    const o = readOptions(options, ['initSteps'], 'state options');
    this.spec.states.push({ name, size, initSteps: (o.initSteps as number | undefined) ?? 1 });
    return name;
  }
  /** A parameter: a whole tensor shared by every step (fc weights [N, K], biases [N], gammas, ...). */
  param(name: string, value: Tensor): string {
    if (typeof name !== 'string') throw argError(`param: name must be a string (got ${describe(name)})`);
    Object.defineProperty(this.spec.params, name, { value, enumerable: true, writable: true, configurable: true });
    return name;
  }
  /** internal = external[t + offset … t + offset + window) at step t. */
  link(internal: string, external: string, options?: { offset?: number; window?: number }): string {
    const o = readOptions(options, ['offset', 'window'], 'link options');
    this.spec.links.push({
      internal, external, offset: (o.offset as number | undefined) ?? 0, window: (o.window as number | undefined) ?? 1,
    });
    return internal;
  }
  /** Exposes a state after the run: offset >= 0 from the start (every step), < 0 from the end (the last). */
  alias(dst: string, src: string, offset: number): string {
    this.spec.aliases.push({ src, dst, offset });
    return dst;
  }
  /** Keeps one buffer for these blobs and recomputes them on backward. */
  recompute(...names: string[]): void {
    this.spec.recompute.push(...names);
  }
  /** Renames the timestep blob (default 'timestep'). */
  timestep(name: string): string {
    this.spec.timestep = name;
    return name;
  }
  /** Any op by its spec fields (the named methods below call this); returns `outputs`. */
  op(type: StepOpType, outputs: string[], inputs: string[], args?: Partial<StepOpSpec>): string[] {
    this.spec.ops.push({ ...(readOptions(args, OP_ARG_KEYS, 'op arguments') as Partial<StepOpSpec>), type, inputs, outputs });
    return outputs;
  }
  /** y = x·Wᵀ (+ b), W [N, K]. */
  fc(y: string, x: string, w: string, b?: string): string {
    return this.op('fc', [y], b === undefined ? [x, w] : [x, w, b])[0];
  }
  /** y = x·Wᵀ, W [N, K] (fc without a bias). */
  matmul(y: string, x: string, w: string): string { return this.op('matmul', [y], [x, w])[0]; }
  /** y = a + b, elementwise. */
  add(y: string, a: string, b: string): string { return this.op('add', [y], [a, b])[0]; }
  /** y = a − b, elementwise. */
  sub(y: string, a: string, b: string): string { return this.op('sub', [y], [a, b])[0]; }
  /** y = a · b, elementwise. */
  mul(y: string, a: string, b: string): string { return this.op('mul', [y], [a, b])[0]; }
  /** y = 1 / (1 + e^−x). */
  sigmoid(y: string, x: string): string { return this.op('sigmoid', [y], [x])[0]; }
  /** y = tanh(x). */
  tanh(y: string, x: string): string { return this.op('tanh', [y], [x])[0]; }
  /** y = max(x, 0). */
  relu(y: string, x: string): string { return this.op('relu', [y], [x])[0]; }
  /** y = x. */
  copy(y: string, x: string): string { return this.op('copy', [y], [x])[0]; }
  /** y = the blobs `xs` joined along `axis` (1: features, default; 0: window). */
  concat(y: string, xs: string[], axis: 0 | 1 = 1): string { return this.op('concat', [y], xs, { axis })[0]; }
  /** y = x[start, end) along `axis` (1: features, default; 0: window). */
  slice(y: string, x: string, start: number, end: number, axis: 0 | 1 = 1): string {
    return this.op('slice', [y], [x], { start, end, axis })[0];
  }
  /** ys = x cut along `axis` into parts of `sizes` (absent: equal parts). */
  split(ys: string[], x: string, sizes?: number[], axis: 0 | 1 = 1): string[] {
    return this.op('split', ys, [x], sizes ? { sizes, axis } : { axis });
  }
  /** [h, c] from gates [B, 4H] (i f g o pre-activations) and c_prev. */
  lstmUnit(out: [string, string], gates: string, cPrev: string): string[] {
    return this.op('lstmUnit', out, [gates, cPrev]);
  }
  /**
   * linearBeforeReset (default): h from xg = W_i x + b_i [B, 3H], hg = W_h h_prev + b_h [B, 3H], h_prev.
   * ONNX form: hg holds only r z [B, 2H]; pass W_hn [H, H] (and b_hn [H]) as parameters.
   */
  gruUnit(h: string, xg: string, hg: string, hPrev: string,
    options?: { linearBeforeReset?: boolean; wHn?: string; bHn?: string }): string {
    const o = readOptions(options, ['linearBeforeReset', 'wHn', 'bHn'], 'gruUnit options');
    const lbr = o.linearBeforeReset === undefined ? true : (o.linearBeforeReset as boolean);
    const inputs = [xg, hg, hPrev];
    if (!lbr) {
      if (o.wHn === undefined) throw argError('gruUnit: the ONNX form needs wHn');
      inputs.push(o.wHn as string);
      if (o.bHn !== undefined) inputs.push(o.bHn as string);
    }
    return this.op('gruUnit', [h], inputs, { linearBeforeReset: lbr })[0];
  }
  /** y = x / sqrt(mean(x²) + eps) · gamma (+ beta) over each row's features. */
  rmsNorm(y: string, x: string, gamma: string, beta?: string, eps = 1e-6): string {
    return this.op('rmsNorm', [y], beta === undefined ? [x, gamma] : [x, gamma, beta], { eps })[0];
  }
  /** The net declared so far as a StepNetSpec (a copy; the parameter tensors are shared). */
  toSpec(): StepNetSpec {
    return { ...this.spec, params: { ...this.spec.params } };
  }
  /** Compiles the net: `new RecurrentNetwork(this.toSpec())` (throws what that throws). */
  build(): RecurrentNetwork {
    return new RecurrentNetwork(this.toSpec());
  }
}

const MAKE_SAVED = Symbol('StepNetSaved');

/** What a forward keeps natively for backward and fetchBlob. */
export class StepNetSaved {
  /** @internal */ handle: NativeStepWorkspace | null;
  /** @internal */ readonly owner: RecurrentNetwork;
  /** @internal */ readonly T: number;
  /** @internal */ readonly B: number;
  /** @internal */ readonly inputs: Tensor[];
  /** @internal */ readonly initShapes: (readonly number[] | null)[];

  /** @internal A forward makes it. */
  constructor(token: symbol, owner: RecurrentNetwork, handle: NativeStepWorkspace, T: number, B: number, inputs: Tensor[],
    initShapes: (readonly number[] | null)[]) {
    if (token !== MAKE_SAVED) throw argError('a StepNetSaved comes from RecurrentNetwork.forward');
    this.owner = owner;
    this.handle = handle;
    this.T = T;
    this.B = B;
    this.inputs = inputs;
    this.initShapes = initShapes;
  }

  /** True once `release()` has freed the stored blobs (backward and fetchBlob then throw ERR_RNNKIT_DISPOSED). */
  get released(): boolean {
    return this.handle === null;
  }

  /** Frees the per-step blobs now instead of at garbage collection; calling it again does nothing. */
  release(): void {
    if (this.handle) native().stepnetRelease(this.handle);
    this.handle = null;
  }
}

/** What `RecurrentNetwork.forward` returns. */
export interface StepForwardResult {
  /** One new CPU tensor [slots, B, size] per alias, by its `dst` name. */
  outputs: Record<string, Tensor>;
  /** What backward and fetchBlob need (always returned). */
  saved: StepNetSaved;
}

/** What `RecurrentNetwork.backward` returns: new CPU tensors. */
export interface StepGradients {
  /** Per input sequence, and per state given an initial value (the shape of that value). */
  inputs: Record<string, Tensor>;
  /** Per parameter, summed over the steps. */
  params: Record<string, Tensor>;
}

const host = (t: Tensor): Float32Array => (t.device === 'cpu' ? t.data : t.readSync());

/**
 * Caffe2's generic RecurrentNetwork operator: a step net compiled natively once, run over T steps
 * forward and backward (BPTT) with no JavaScript per step. Tensors are CPU float32; CUDA inputs
 * are read back and the net runs on the CPU. See the module description for the contract.
 */
export class RecurrentNetwork {
  /** The spec as checked (its lists copied; `params` is this object's `params`). */
  readonly spec: StepNetSpec;
  /** The parameters by name (`setParam` replaces one). */
  readonly params: Record<string, Tensor>;
  /** Every blob of the compiled net with its per-step shape. */
  readonly blobs: readonly BlobDescription[];
  /** The executor the last forward or backward ran. */
  lastExecutor: 'sequential' | 'wavefront' | null = null;
  private readonly handle: NativeStepNet;
  private readonly paramNames: string[];
  private latest: StepNetSaved | null = null;

  /**
   * Compiles the net. Throws ERR_RNNKIT_ARG for a bad structure (unknown blob, cycle within a
   * step, link out of range, unknown op) and ERR_RNNKIT_SHAPE for mismatched sizes, naming the blob.
   */
  constructor(spec: StepNetSpec | StepNetBuilder) {
    const builder = isInstance(spec, StepNetBuilder);
    const s = readRequiredOptions(builder ? (spec as StepNetBuilder).toSpec() : spec, SPEC_KEYS, 'the step-net spec',
      'RecurrentNetwork needs a StepNetSpec or a StepNetBuilder');
    const params = s.params === undefined ? {} : readRecord(s.params, 'spec.params');
    this.paramNames = Object.keys(params);
    this.params = {};
    for (const name of this.paramNames) this.params[name] = checkTensor(params[name], `param '${name}'`);
    const lists = {
      inputs: specEntries(s.inputs, 'inputs'), states: specEntries(s.states, 'states'), links: specEntries(s.links, 'links'),
      ops: specEntries(s.ops, 'ops'), aliases: specEntries(s.aliases, 'aliases'),
    };
    this.spec = { ...(s as StepNetSpec), ...lists, params: this.params };
    const nativeSpec = {
      ...lists, recompute: s.recompute === undefined ? [] : readArray(s.recompute, 'spec.recompute'),
      timestep: s.timestep ?? 'timestep',
      params: this.paramNames.map((name) => ({ name, shape: [...this.params[name].shape] })),
    };
    this.handle = native().stepnetCompile(nativeSpec);
    this.blobs = native().stepnetBlobs(this.handle);
  }

  /** Replaces a parameter's values (same shape). */
  setParam(name: string, value: Tensor): void {
    if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(this.params, name)) {
      throw argError(`unknown param ${typeof name === 'string' ? `'${name}'` : '(not a string)'}`);
    }
    const old = this.params[name];
    checkTensor(value, name);
    if (value.shape.length !== old.shape.length || value.shape.some((d, k) => d !== old.shape[k])) {
      throw shapeError(`param '${name}' must have shape [${old.shape.join(', ')}]`);
    }
    this.params[name] = value;
  }

  private plan(given: Record<string, Tensor>, options: StepForwardOptions | undefined) {
    const o = readOptions(options, FORWARD_KEYS, 'step-net forward options');
    const inputs = readRecord(given, 'the inputs record of forward');
    const specInputs = this.spec.inputs ?? [];
    const states = this.spec.states ?? [];
    const known = new Set([...specInputs.map((i) => i.name), ...states.map((s) => s.name)]);
    for (const key of Object.keys(inputs)) if (!known.has(key)) throw argError(`unknown input '${key}'`);
    const seqs = specInputs.map((i) => {
      const t = checkTensor(inputs[i.name], `input '${i.name}'`, 3);
      if (t.shape[2] !== i.size) throw shapeError(`input '${i.name}' must be [T, B, ${i.size}], got [${t.shape.join(', ')}]`);
      return t;
    });
    let B = seqs.length > 0 ? seqs[0].shape[1] : -1;
    for (const [k, t] of seqs.entries()) {
      if (t.shape[1] !== B) throw shapeError(`input '${specInputs[k].name}' has batch ${t.shape[1]}, expected ${B}`);
    }
    const defaultSteps = seqs.length > 0 ? seqs[0].shape[0] : undefined;
    if (o.steps === undefined && defaultSteps === undefined) throw argError('steps must be an integer >= 1 (or give an input)');
    const T = readInteger(o.steps, 'steps', 1, 2 ** 31, defaultSteps);
    const inits = states.map((s) => {
      const v = inputs[s.name];
      if (v === undefined || v === null) return null;
      const t = checkTensor(v, `initial value of state '${s.name}'`);
      if (t.rank < 1 || t.rank > 3 || t.shape[t.rank - 1] !== s.size) {
        throw shapeError(`initial value of state '${s.name}' must be [${s.size}], [B, ${s.size}] or [k, B, ${s.size}]`);
      }
      if (t.rank >= 2) {
        const b = t.shape[t.rank - 2];
        if (B < 0) B = b;
        if (b !== B) throw shapeError(`initial value of state '${s.name}' has batch ${b}, expected ${B}`);
      }
      if (t.rank === 3 && t.shape[0] !== (s.initSteps ?? 1)) {
        throw shapeError(`initial value of state '${s.name}' must hold initSteps = ${s.initSteps ?? 1} steps`);
      }
      return t;
    });
    if (B < 1) throw argError('the batch size is unknown: give an input sequence or a [B, size] initial value');
    const seqLengths = readSeqLengths(o.seqLengths, T, B);
    if (o.training !== undefined && typeof o.training !== 'boolean') throw argError('training must be a boolean');
    const executor = readExecutor(o);
    const slots = native().stepnetAliasSlots(this.handle, T);
    const outShapes = (this.spec.aliases ?? []).map((a, k) => {
      const st = states.find((s) => s.name === a.src);
      return [slots[k], B, st ? st.size : 0];
    });
    checkHostAllocation('forward', [
      ...outShapes.map((sh, k): Allocation => ({ what: `output '${(this.spec.aliases ?? [])[k].dst}'`, floats: sh[0] * sh[1] * sh[2] })),
      { what: `the workspace of ${T} steps, batch ${B}`, floats: Math.ceil(native().stepnetWorkspaceSize(this.handle, T, B).forward), native: true },
    ]);
    return { T, B, seqs, inits, seqLengths, executor, outShapes };
  }

  private forwardArgs(p: ReturnType<RecurrentNetwork['plan']>, outs: Float32Array[], async: boolean) {
    return [this.handle, p.T, p.B, p.seqs.map(host), p.seqs.map((t) => t.shape[0]),
      p.inits.map((t) => (t ? host(t) : null)), p.inits.map((t) => (t ? t.rank : 0)),
      this.paramNames.map((n) => host(this.params[n])), p.seqLengths, outs, p.executor, async] as const;
  }

  private finishForward(p: ReturnType<RecurrentNetwork['plan']>, handle: NativeStepWorkspace, outs: Float32Array[]): StepForwardResult {
    const outputs: Record<string, Tensor> = {};
    (this.spec.aliases ?? []).forEach((a, k) => {
      outputs[a.dst] = Tensor.fromCpu(outs[k], p.outShapes[k]);
    });
    const saved = new StepNetSaved(MAKE_SAVED, this, handle, p.T, p.B, p.seqs, p.inits.map((t) => (t ? t.shape : null)));
    this.latest = saved;
    this.lastExecutor = native().stepnetExecutor(this.handle, p.executor);
    return { outputs, saved };
  }

  /**
   * Runs the net over T steps off the event loop. `inputs` maps each input name to a [T_in, B, size]
   * tensor and may map a state name to its initial value ([size], [B, size] or [initSteps, B, size];
   * zeros when absent). Throws ERR_RNNKIT_ARG / ERR_RNNKIT_SHAPE for unknown names or bad shapes,
   * ERR_RNNKIT_OOM when the outputs or workspace cannot be allocated.
   */
  async forward(inputs: Record<string, Tensor>, options?: StepForwardOptions): Promise<StepForwardResult> {
    const p = this.plan(inputs, options);
    const outs = p.outShapes.map((s) => allocFloats(s[0] * s[1] * s[2], 'an output', 'forward').fill(NaN));
    const handle = await native().stepnetForward(...this.forwardArgs(p, outs, true));
    return this.finishForward(p, handle, outs);
  }

  /** The synchronous twin of `forward`. */
  forwardSync(inputs: Record<string, Tensor>, options?: StepForwardOptions): StepForwardResult {
    const p = this.plan(inputs, options);
    const outs = p.outShapes.map((s) => allocFloats(s[0] * s[1] * s[2], 'an output', 'forward').fill(NaN));
    const handle = native().stepnetForward(...this.forwardArgs(p, outs, false)) as NativeStepWorkspace;
    return this.finishForward(p, handle, outs);
  }

  private backwardPlan(saved: StepNetSaved, given: Record<string, Tensor> | null | undefined, executor: StepExecutor) {
    if (!isSavedOf(saved, this)) throw argError('saved must come from this network\'s forward');
    if (saved.handle === null) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'saved has been released');
    for (const t of saved.inputs) t.assertLive('a forward input');
    const grads = given === null || given === undefined ? {} : readRecord(given, 'the gradients record of backward');
    const aliases = this.spec.aliases ?? [];
    const names = new Set(aliases.map((a) => a.dst));
    for (const key of Object.keys(grads)) if (!names.has(key)) throw argError(`unknown output '${key}'`);
    const slots = native().stepnetAliasSlots(this.handle, saved.T);
    const states = this.spec.states ?? [];
    const g = aliases.map((a, k) => {
      const v = Object.prototype.hasOwnProperty.call(grads, a.dst) ? grads[a.dst] : undefined;
      if (v === undefined || v === null) return null;
      const t = checkTensor(v, `gradient of '${a.dst}'`, 3);
      const size = states.find((s) => s.name === a.src)?.size;
      if (t.shape[0] !== slots[k] || t.shape[1] !== saved.B || t.shape[2] !== size) {
        throw shapeError(`gradient of '${a.dst}' must be [${slots[k]}, ${saved.B}, ${size}], got [${t.shape.join(', ')}]`);
      }
      return host(t);
    });
    const initSizes = saved.initShapes.map((s) => (s ? s.reduce((a, b) => a * b, 1) : 0));
    checkHostAllocation('backward', [
      { what: 'the input gradients', floats: saved.inputs.reduce((n, t) => n + t.size, 0) + initSizes.reduce((a, b) => a + b, 0) },
      { what: 'the parameter gradients', floats: this.paramNames.reduce((n, name) => n + this.params[name].size, 0) },
      { what: `the backward's working memory of ${saved.T} steps`, floats: Math.ceil(native().stepnetWorkspaceSize(this.handle, saved.T, saved.B).backward), native: true },
    ]);
    const dInputs = saved.inputs.map((t) => allocFloats(t.size, 'an input gradient', 'backward').fill(NaN));
    const dInits = saved.initShapes.map((s, k) => (s ? allocFloats(initSizes[k], 'a state gradient', 'backward').fill(NaN) : null));
    const dParams = this.paramNames.map((n) => allocFloats(this.params[n].size, 'a parameter gradient', 'backward').fill(NaN));
    const args = [this.handle, saved.handle, saved.inputs.map(host), this.paramNames.map((n) => host(this.params[n])), g,
      dInputs, dInits, dParams, executor] as const;
    const finish = (): StepGradients => {
      this.lastExecutor = native().stepnetExecutor(this.handle, executor);
      const inputs: Record<string, Tensor> = {};
      (this.spec.inputs ?? []).forEach((i, k) => { inputs[i.name] = Tensor.fromCpu(dInputs[k], saved.inputs[k].shape); });
      states.forEach((s, k) => {
        const shape = saved.initShapes[k];
        const d = dInits[k];
        if (shape && d) inputs[s.name] = Tensor.fromCpu(d, shape);
      });
      const params: Record<string, Tensor> = {};
      this.paramNames.forEach((n, k) => { params[n] = Tensor.fromCpu(dParams[k], this.params[n].shape); });
      return { inputs, params };
    };
    return { args, finish };
  }

  /**
   * BPTT off the event loop: `grads` maps alias names to [slots, B, size] gradients of their
   * outputs (absent ones are zero). The inputs and parameters must not change between the forward
   * and this call. Throws ERR_RNNKIT_ARG for a saved of another net or an unknown output,
   * ERR_RNNKIT_DISPOSED for a released saved or a disposed input, ERR_RNNKIT_SHAPE for bad shapes.
   */
  async backward(saved: StepNetSaved, grads: Record<string, Tensor> = {}, options?: { executor?: StepExecutor }):
    Promise<StepGradients> {
    const { args, finish } = this.backwardPlan(saved, grads, readExecutor(readOptions(options, BACKWARD_KEYS, 'step-net backward options')));
    await native().stepnetBackward(...args, true);
    return finish();
  }

  /** The synchronous twin of `backward`. */
  backwardSync(saved: StepNetSaved, grads: Record<string, Tensor> = {}, options?: { executor?: StepExecutor }):
    StepGradients {
    const { args, finish } = this.backwardPlan(saved, grads, readExecutor(readOptions(options, BACKWARD_KEYS, 'step-net backward options')));
    native().stepnetBackward(...args, false);
    return finish();
  }

  /** The value of blob `name` at `step`: [B, size], or [window, B, size] for windowed blobs. */
  fetchBlob(name: string, step: number, saved: StepNetSaved | null = this.latest): Tensor {
    if (saved === null) throw argError('fetchBlob: no forward has run');
    if (!isSavedOf(saved, this)) throw argError('fetchBlob: saved must come from this network\'s forward');
    if (saved.handle === null) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'saved has been released');
    const blob = typeof name === 'string' ? this.blobs.find((b) => b.name === name) : undefined;
    if (!blob) throw argError(`fetchBlob: unknown blob ${typeof name === 'string' ? `'${name}'` : '(not a string)'}`);
    readInteger(step, 'step', -(2 ** 31), 2 ** 31);
    const out = allocFloats(blob.window * saved.B * blob.size, `blob '${name}'`, 'fetchBlob');
    native().stepnetFetch(this.handle, saved.handle, name, step, out);
    return Tensor.fromCpu(out, blob.window === 1 ? [saved.B, blob.size] : [blob.window, saved.B, blob.size]);
  }
}
