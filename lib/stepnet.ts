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
 */
import { RnnkitError } from './errors';
import { native } from './native';
import { Tensor, checkTensor } from './tensor';

export type StepOpType = 'fc' | 'matmul' | 'add' | 'sub' | 'mul' | 'sigmoid' | 'tanh' | 'relu' | 'concat'
  | 'slice' | 'split' | 'copy' | 'lstmUnit' | 'gruUnit' | 'rmsNorm';

export interface StepOpSpec {
  type: StepOpType;
  inputs: string[];
  outputs: string[];
  /** concat / slice / split: 1 = features (default), 0 = the window axis. */
  axis?: 0 | 1;
  start?: number;
  end?: number;
  sizes?: number[];
  eps?: number;
  linearBeforeReset?: boolean;
}

export interface StepNetSpec {
  inputs?: { name: string; size: number }[];
  states?: { name: string; size: number; initSteps?: number }[];
  params?: Record<string, Tensor>;
  links?: { internal: string; external: string; offset?: number; window?: number }[];
  ops?: StepOpSpec[];
  aliases?: { src: string; dst: string; offset: number }[];
  recompute?: string[];
  timestep?: string;
}

export type StepExecutor = 'auto' | 'sequential' | 'wavefront';

export interface StepForwardOptions {
  seqLengths?: Int32Array | null;
  /** Number of steps T (default: the first input's length). */
  steps?: number;
  /** Kept for symmetry with Recurrent: the forward always keeps what backward and fetchBlob need. */
  training?: boolean;
  executor?: StepExecutor;
}

export interface BlobDescription {
  name: string;
  kind: 'input_link' | 'state_read' | 'state_write' | 'step' | 'param' | 'timestep';
  window: number;
  size: number;
  stored: boolean;
  hoisted: boolean;
}

type MaybePromise<T> = Promise<T> | T;
type Handle = object;
type F32 = Float32Array | null;

interface StepNetBinding {
  stepnetCompile(spec: object): Handle;
  stepnetBlobs(net: Handle): BlobDescription[];
  stepnetAliasSlots(net: Handle, T: number): number[];
  stepnetExecutor(net: Handle, executor: string): 'sequential' | 'wavefront';
  stepnetForward(net: Handle, T: number, B: number, inputs: Float32Array[], inputSteps: number[], inits: F32[],
    initRanks: number[], params: Float32Array[], seqLengths: Int32Array | null, aliasOut: Float32Array[],
    executor: string, async: boolean): MaybePromise<Handle>;
  stepnetBackward(net: Handle, ws: Handle, inputs: Float32Array[], params: Float32Array[], aliasGrads: F32[],
    dInputs: Float32Array[], dInits: F32[], dParams: Float32Array[], executor: string, async: boolean): MaybePromise<void>;
  stepnetFetch(net: Handle, ws: Handle, name: string, step: number, out: Float32Array): void;
  stepnetRelease(ws: Handle): void;
}

const binding = (): StepNetBinding => native() as unknown as StepNetBinding;

const argError = (m: string): RnnkitError => new RnnkitError('ERR_RNNKIT_ARG', m);
const shapeError = (m: string): RnnkitError => new RnnkitError('ERR_RNNKIT_SHAPE', m);

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
  state(name: string, size: number, options: { initSteps?: number } = {}): string {
    this.spec.states.push({ name, size, initSteps: options.initSteps ?? 1 });
    return name;
  }
  param(name: string, value: Tensor): string {
    this.spec.params[name] = value;
    return name;
  }
  /** internal = external[t + offset … t + offset + window) at step t. */
  link(internal: string, external: string, options: { offset?: number; window?: number } = {}): string {
    this.spec.links.push({ internal, external, offset: options.offset ?? 0, window: options.window ?? 1 });
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
  op(type: StepOpType, outputs: string[], inputs: string[], args: Partial<StepOpSpec> = {}): string[] {
    this.spec.ops.push({ ...args, type, inputs, outputs });
    return outputs;
  }
  /** y = x·Wᵀ (+ b), W [N, K]. */
  fc(y: string, x: string, w: string, b?: string): string {
    return this.op('fc', [y], b === undefined ? [x, w] : [x, w, b])[0];
  }
  matmul(y: string, x: string, w: string): string { return this.op('matmul', [y], [x, w])[0]; }
  add(y: string, a: string, b: string): string { return this.op('add', [y], [a, b])[0]; }
  sub(y: string, a: string, b: string): string { return this.op('sub', [y], [a, b])[0]; }
  mul(y: string, a: string, b: string): string { return this.op('mul', [y], [a, b])[0]; }
  sigmoid(y: string, x: string): string { return this.op('sigmoid', [y], [x])[0]; }
  tanh(y: string, x: string): string { return this.op('tanh', [y], [x])[0]; }
  relu(y: string, x: string): string { return this.op('relu', [y], [x])[0]; }
  copy(y: string, x: string): string { return this.op('copy', [y], [x])[0]; }
  concat(y: string, xs: string[], axis: 0 | 1 = 1): string { return this.op('concat', [y], xs, { axis })[0]; }
  slice(y: string, x: string, start: number, end: number, axis: 0 | 1 = 1): string {
    return this.op('slice', [y], [x], { start, end, axis })[0];
  }
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
    options: { linearBeforeReset?: boolean; wHn?: string; bHn?: string } = {}): string {
    const lbr = options.linearBeforeReset ?? true;
    const inputs = [xg, hg, hPrev];
    if (!lbr) {
      if (options.wHn === undefined) throw argError('gruUnit: the ONNX form needs wHn');
      inputs.push(options.wHn);
      if (options.bHn !== undefined) inputs.push(options.bHn);
    }
    return this.op('gruUnit', [h], inputs, { linearBeforeReset: lbr })[0];
  }
  rmsNorm(y: string, x: string, gamma: string, beta?: string, eps = 1e-6): string {
    return this.op('rmsNorm', [y], beta === undefined ? [x, gamma] : [x, gamma, beta], { eps })[0];
  }
  toSpec(): StepNetSpec {
    return { ...this.spec, params: { ...this.spec.params } };
  }
  build(): RecurrentNetwork {
    return new RecurrentNetwork(this.toSpec());
  }
}

/** What a forward keeps natively for backward and fetchBlob. */
export class StepNetSaved {
  /** @internal */ handle: Handle | null;
  /** @internal */ readonly owner: RecurrentNetwork;
  /** @internal */ readonly T: number;
  /** @internal */ readonly B: number;
  /** @internal */ readonly inputs: Tensor[];
  /** @internal */ readonly initShapes: (readonly number[] | null)[];

  /** @internal */
  constructor(owner: RecurrentNetwork, handle: Handle, T: number, B: number, inputs: Tensor[],
    initShapes: (readonly number[] | null)[]) {
    this.owner = owner;
    this.handle = handle;
    this.T = T;
    this.B = B;
    this.inputs = inputs;
    this.initShapes = initShapes;
  }

  get released(): boolean {
    return this.handle === null;
  }

  release(): void {
    if (this.handle) binding().stepnetRelease(this.handle);
    this.handle = null;
  }
}

export interface StepForwardResult {
  outputs: Record<string, Tensor>;
  saved: StepNetSaved;
}

export interface StepGradients {
  /** Per input sequence, and per state given an initial value. */
  inputs: Record<string, Tensor>;
  params: Record<string, Tensor>;
}

const host = (t: Tensor): Float32Array => (t.device === 'cpu' ? t.data : t.readSync());

export class RecurrentNetwork {
  readonly spec: StepNetSpec;
  readonly params: Record<string, Tensor>;
  /** Every blob of the compiled net with its per-step shape. */
  readonly blobs: readonly BlobDescription[];
  /** The executor the last forward or backward ran. */
  lastExecutor: 'sequential' | 'wavefront' | null = null;
  private readonly handle: Handle;
  private readonly paramNames: string[];
  private latest: StepNetSaved | null = null;

  constructor(spec: StepNetSpec | StepNetBuilder) {
    const s = spec instanceof StepNetBuilder ? spec.toSpec() : spec;
    if (typeof s !== 'object' || s === null) throw argError('RecurrentNetwork needs a StepNetSpec or a StepNetBuilder');
    const params = s.params ?? {};
    if (typeof params !== 'object' || params === null) throw argError('spec.params must map names to Tensors');
    this.paramNames = Object.keys(params);
    this.params = {};
    for (const name of this.paramNames) this.params[name] = checkTensor(params[name], `param '${name}'`);
    this.spec = { ...s, params: this.params };
    const nativeSpec = {
      inputs: s.inputs ?? [], states: s.states ?? [], links: s.links ?? [], ops: s.ops ?? [],
      aliases: s.aliases ?? [], recompute: s.recompute ?? [], timestep: s.timestep ?? 'timestep',
      params: this.paramNames.map((name) => ({ name, shape: [...this.params[name].shape] })),
    };
    this.handle = binding().stepnetCompile(nativeSpec);
    this.blobs = binding().stepnetBlobs(this.handle);
  }

  /** Replaces a parameter's values (same shape). */
  setParam(name: string, value: Tensor): void {
    const old = this.params[name];
    if (!old) throw argError(`unknown param '${name}'`);
    checkTensor(value, name);
    if (value.shape.length !== old.shape.length || value.shape.some((d, k) => d !== old.shape[k])) {
      throw shapeError(`param '${name}' must have shape [${old.shape.join(', ')}]`);
    }
    this.params[name] = value;
  }

  private plan(inputs: Record<string, Tensor>, options: StepForwardOptions) {
    if (typeof inputs !== 'object' || inputs === null) throw argError('forward needs an inputs record');
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
    const T = options.steps ?? (seqs.length > 0 ? seqs[0].shape[0] : undefined);
    if (typeof T !== 'number' || !Number.isInteger(T) || T < 1) throw argError('steps must be an integer >= 1 (or give an input)');
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
    let seqLengths: Int32Array | null = null;
    if (options.seqLengths !== undefined && options.seqLengths !== null) {
      if (!(options.seqLengths instanceof Int32Array)) throw new RnnkitError('ERR_RNNKIT_DTYPE', 'seqLengths must be an Int32Array');
      if (options.seqLengths.length !== B) throw shapeError(`seqLengths must hold ${B} values`);
      for (const v of options.seqLengths) if (v < 0 || v > T) throw argError(`seqLengths values must lie in 0..${T} (got ${v})`);
      seqLengths = options.seqLengths;
    }
    const executor = options.executor ?? 'auto';
    const slots = binding().stepnetAliasSlots(this.handle, T);
    const outShapes = (this.spec.aliases ?? []).map((a, k) => {
      const st = states.find((s) => s.name === a.src);
      return [slots[k], B, st ? st.size : 0];
    });
    return { T, B, seqs, inits, seqLengths, executor, outShapes };
  }

  private forwardArgs(p: ReturnType<RecurrentNetwork['plan']>, outs: Float32Array[], async: boolean) {
    return [this.handle, p.T, p.B, p.seqs.map(host), p.seqs.map((t) => t.shape[0]),
      p.inits.map((t) => (t ? host(t) : null)), p.inits.map((t) => (t ? t.rank : 0)),
      this.paramNames.map((n) => host(this.params[n])), p.seqLengths, outs, p.executor, async] as const;
  }

  private finishForward(p: ReturnType<RecurrentNetwork['plan']>, handle: Handle, outs: Float32Array[]): StepForwardResult {
    const outputs: Record<string, Tensor> = {};
    (this.spec.aliases ?? []).forEach((a, k) => {
      outputs[a.dst] = Tensor.fromCpu(outs[k], p.outShapes[k]);
    });
    const saved = new StepNetSaved(this, handle, p.T, p.B, p.seqs, p.inits.map((t) => (t ? t.shape : null)));
    this.latest = saved;
    this.lastExecutor = binding().stepnetExecutor(this.handle, p.executor);
    return { outputs, saved };
  }

  async forward(inputs: Record<string, Tensor>, options: StepForwardOptions = {}): Promise<StepForwardResult> {
    const p = this.plan(inputs, options);
    const outs = p.outShapes.map((s) => new Float32Array(s[0] * s[1] * s[2]).fill(NaN));
    const handle = await binding().stepnetForward(...this.forwardArgs(p, outs, true));
    return this.finishForward(p, handle, outs);
  }

  forwardSync(inputs: Record<string, Tensor>, options: StepForwardOptions = {}): StepForwardResult {
    const p = this.plan(inputs, options);
    const outs = p.outShapes.map((s) => new Float32Array(s[0] * s[1] * s[2]).fill(NaN));
    const handle = binding().stepnetForward(...this.forwardArgs(p, outs, false)) as Handle;
    return this.finishForward(p, handle, outs);
  }

  private backwardPlan(saved: StepNetSaved, grads: Record<string, Tensor>, executor: StepExecutor) {
    if (!(saved instanceof StepNetSaved) || saved.owner !== this) throw argError('saved must come from this network\'s forward');
    if (saved.handle === null) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'saved has been released');
    for (const t of saved.inputs) t.assertLive('a forward input');
    const aliases = this.spec.aliases ?? [];
    const names = new Set(aliases.map((a) => a.dst));
    for (const key of Object.keys(grads ?? {})) if (!names.has(key)) throw argError(`unknown output '${key}'`);
    const slots = binding().stepnetAliasSlots(this.handle, saved.T);
    const states = this.spec.states ?? [];
    const g = aliases.map((a, k) => {
      const v = grads?.[a.dst];
      if (v === undefined || v === null) return null;
      const t = checkTensor(v, `gradient of '${a.dst}'`, 3);
      const size = states.find((s) => s.name === a.src)?.size;
      if (t.shape[0] !== slots[k] || t.shape[1] !== saved.B || t.shape[2] !== size) {
        throw shapeError(`gradient of '${a.dst}' must be [${slots[k]}, ${saved.B}, ${size}], got [${t.shape.join(', ')}]`);
      }
      return host(t);
    });
    const dInputs = saved.inputs.map((t) => new Float32Array(t.size).fill(NaN));
    const dInits = saved.initShapes.map((s) => (s ? new Float32Array(s.reduce((a, b) => a * b, 1)).fill(NaN) : null));
    const dParams = this.paramNames.map((n) => new Float32Array(this.params[n].size).fill(NaN));
    const args = [this.handle, saved.handle, saved.inputs.map(host), this.paramNames.map((n) => host(this.params[n])), g,
      dInputs, dInits, dParams, executor] as const;
    const finish = (): StepGradients => {
      this.lastExecutor = binding().stepnetExecutor(this.handle, executor);
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

  async backward(saved: StepNetSaved, grads: Record<string, Tensor> = {}, options: { executor?: StepExecutor } = {}):
    Promise<StepGradients> {
    const { args, finish } = this.backwardPlan(saved, grads, options.executor ?? 'auto');
    await binding().stepnetBackward(...args, true);
    return finish();
  }

  backwardSync(saved: StepNetSaved, grads: Record<string, Tensor> = {}, options: { executor?: StepExecutor } = {}):
    StepGradients {
    const { args, finish } = this.backwardPlan(saved, grads, options.executor ?? 'auto');
    binding().stepnetBackward(...args, false);
    return finish();
  }

  /** The value of blob `name` at `step`: [B, size], or [window, B, size] for windowed blobs. */
  fetchBlob(name: string, step: number, saved: StepNetSaved | null = this.latest): Tensor {
    if (saved === null) throw argError('fetchBlob: no forward has run');
    if (saved.handle === null) throw new RnnkitError('ERR_RNNKIT_DISPOSED', 'saved has been released');
    const blob = this.blobs.find((b) => b.name === name);
    if (!blob) throw argError(`fetchBlob: unknown blob '${name}'`);
    const out = new Float32Array(blob.window * saved.B * blob.size);
    binding().stepnetFetch(this.handle, saved.handle, name, step, out);
    return Tensor.fromCpu(out, blob.window === 1 ? [saved.B, blob.size] : [blob.window, saved.B, blob.size]);
  }
}
