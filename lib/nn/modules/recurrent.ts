/**
 * nn.LSTM, nn.GRU, nn.RNN over the fused Recurrent op (lib/recurrent.ts), with torch.nn's
 * parameters: weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k}, weight_hr_l{k}
 * (projection), suffix _reverse for the second direction, in PyTorch's order and shapes. Each is a
 * view of the op's one packed weight tensor (their `.grad`s views of one packed gradient), so the
 * op keeps its speed: one native forward and one native backward per call, the weight gradients
 * added into the packed gradient by the kernel itself.
 *
 * forward(x, { hx, cx, seqLengths }) -> { y, hy, cy }: x [T, B, inputSize] ([B, T, ...] with
 * batchFirst), hx [L·D, B, projSize || hiddenSize], cx (LSTM) [L·D, B, hiddenSize]; y, hy, cy
 * (null but for the LSTM) are recorded for backward, with gradients flowing into x, hx and cx when
 * they require them. Dropout between layers applies in training mode. `bias: false` keeps the
 * bias blocks at zero and out of the parameters (PyTorch's bias=False). Options PyTorch lacks
 * (peepholes, cellClip, inputMode 'skip', linearBeforeReset false) are the op's; their blocks get
 * names of the same form (weight_peephole_l{k}).
 *
 * Devices: on the CPU the parameters view the op's packed host weights. `to('cuda')` makes a CUDA
 * op whose parameters are views of its packed weights on the device (and `.grad`s views of one
 * packed device gradient), so the CUDA optimizer steps, clipping, zeroGrad and loadStateDict
 * write them in place and a training step copies nothing to the host for them. The op downloads
 * them only for host reads (`recurrent.weights`, exportWeights, a CPU run).
 */
import { RnnkitError } from '../../errors';
import { Device, DeviceSpec } from '../../device';
import { Recurrent, RecurrentForwardResult, RecurrentGradients, RecurrentOptions, RecurrentSaved } from '../../recurrent';
import { PackedBlock, RecurrentMode, packedBlocks } from '../../recurrent-params';
import { Tensor, zeros } from '../../tensor';
import { native, uploadSync } from '../../native';
import { ACCUMULATED, BackwardContext, InputGrad, record, shouldRecord } from '../engine';
import { MaybePromise, then } from '../maybe';
import { Module } from '../module';
import { parameter } from '../parameter';
import { readBoolean, readChoice, readOptions } from '../../args';

/** Options shared by nn.LSTM, nn.GRU and nn.RNN (PyTorch's, plus the op's own). */
export interface RecurrentModuleOptions {
  /** Features of x (an integer from 1 to 2^24). */
  inputSize: number;
  /** Features of the hidden state (an integer from 1 to 2^24). */
  hiddenSize: number;
  /** Default 1. */
  numLayers?: number;
  /** Learned biases (default true; false keeps them zero and out of the parameters). */
  bias?: boolean;
  /** x and y as [B, T, F] (default false: [T, B, F]). */
  batchFirst?: boolean;
  /** Dropout on the outputs of every layer but the last, in training mode, in [0, 1). */
  dropout?: number;
  /** Run a reverse direction too; y concatenates both (default false). */
  bidirectional?: boolean;
  /** 'linear' (default) or 'skip' (no input projection in layer 0; needs inputSize == hiddenSize). */
  inputMode?: 'linear' | 'skip';
  /** Seeds the weights and the dropout masks; a random one when absent. */
  seed?: number;
  /** Where the op runs (default 'cpu'); the parameters live there too (views of the op's packed weights). */
  device?: DeviceSpec;
  /** The GPU algorithm (the Recurrent op's option: 'auto', 'standard' or 'persistent'). */
  algorithm?: RecurrentOptions['algorithm'];
}

/** Options of nn.LSTM. */
export interface LSTMOptions extends RecurrentModuleOptions {
  /** Size of the projected hidden state (0: none); adds weight_hr_l{k}. */
  projSize?: number;
  /** Clip the cell state to [−cellClip, cellClip] (0: none). */
  cellClip?: number;
  /** Peephole connections (adds weight_peephole_l{k}; not in PyTorch). */
  peepholes?: boolean;
}

/** Options of nn.GRU. */
export interface GRUOptions extends RecurrentModuleOptions {
  /** true (default): the cuDNN / PyTorch form; false: the ONNX default. */
  linearBeforeReset?: boolean;
}

/** Options of nn.RNN. */
export interface RNNOptions extends RecurrentModuleOptions {
  /** 'tanh' (default) or 'relu'. */
  nonlinearity?: 'tanh' | 'relu';
}

/** The state a recurrent module starts from (all optional: zeros, full lengths). */
export interface RecurrentState {
  /** The initial hidden state [L·D, B, projSize || hiddenSize]. */
  hx?: Tensor | null;
  /** The initial cell state [L·D, B, hiddenSize], LSTM only. */
  cx?: Tensor | null;
  /** B lengths in 0..T, any order. */
  seqLengths?: Int32Array | null;
}

/** What a recurrent module returns. */
export interface RecurrentOutput {
  /** The last layer's outputs [T, B, D·R] ([B, T, D·R] with batchFirst). */
  y: Tensor;
  /** The final hidden state [L·D, B, R]. */
  hy: Tensor;
  /** The final cell state [L·D, B, hiddenSize]; null unless LSTM. */
  cy: Tensor | null;
}

const COMMON_KEYS = ['inputSize', 'hiddenSize', 'numLayers', 'bias', 'batchFirst', 'dropout', 'bidirectional', 'inputMode', 'seed', 'device',
  'algorithm'];
const STATE_KEYS = ['hx', 'cx', 'seqLengths'];

interface ParamView {
  block: PackedBlock;
  tensor: Tensor;
  /** The view of the packed gradient this parameter's `.grad` was last given. */
  gradView: Tensor | null;
}

/** The common part of nn.LSTM, nn.GRU and nn.RNN. */
export class RNNBase extends Module {
  /** The cell: lstm, gru, rnn_tanh or rnn_relu. */
  readonly mode: RecurrentMode;
  /** Features of x. */
  readonly inputSize: number;
  /** Features of h (before the projection). */
  readonly hiddenSize: number;
  /** Stacked layers. */
  readonly numLayers: number;
  /** Whether the biases are learned. */
  readonly bias: boolean;
  /** x and y are [B, T, F]. */
  readonly batchFirst: boolean;
  /** Dropout probability between layers (training mode). */
  readonly dropout: number;
  /** Two directions per layer. */
  readonly bidirectional: boolean;
  private op: Recurrent;
  private readonly opOptions: RecurrentOptions;
  private packed: Tensor;
  private views: ParamView[] = [];
  private packedGrad: Tensor | null = null;

  /**
   * Creates the fused Recurrent op and the PyTorch-named parameter views of its packed weights.
   * Throws ERR_RNNKIT_ARG naming a bad option (and for `new RNNBase` itself).
   */
  protected constructor(mode: RecurrentMode, options: RecurrentModuleOptions, extraKeys: string[]) {
    super();
    if (new.target === RNNBase) throw new RnnkitError('ERR_RNNKIT_ARG', 'RNNBase is abstract: use LSTM, GRU or RNN');
    const o = readOptions(options, [...COMMON_KEYS, ...extraKeys], `${mode === 'lstm' ? 'LSTM' : mode === 'gru' ? 'GRU' : 'RNN'} options`);
    this.bias = readBoolean(o.bias, 'bias', true);
    const opOptions: RecurrentOptions = { mode, inputSize: o.inputSize as number, hiddenSize: o.hiddenSize as number, device: 'cpu' };
    for (const key of ['numLayers', 'batchFirst', 'dropout', 'bidirectional', 'inputMode', 'seed', 'device', 'algorithm', ...extraKeys]) {
      if (o[key] !== undefined && key !== 'nonlinearity') Object.assign(opOptions, { [key]: o[key] });
    }
    this.opOptions = opOptions;
    this.op = new Recurrent(opOptions);
    this.mode = mode;
    this.inputSize = this.op.inputSize;
    this.hiddenSize = this.op.hiddenSize;
    this.numLayers = this.op.numLayers;
    this.batchFirst = this.op.batchFirst;
    this.dropout = this.op.dropout;
    this.bidirectional = this.op.bidirectional;
    this.packed = RNNBase.packedOf(this.op);
    this.exposeParameters();
  }

  /** The fused op underneath (its `weights` are the packed tensor the parameters view). */
  get recurrent(): Recurrent {
    return this.op;
  }

  /** y, hy, cy for x from `state`, off the event loop. */
  override async forward(x: Tensor, state?: RecurrentState): Promise<RecurrentOutput> {
    return this.run(x, state, true);
  }

  /** `forward` on the calling thread. */
  override forwardSync(x: Tensor, state?: RecurrentState): RecurrentOutput {
    return this.run(x, state, false) as RecurrentOutput;
  }

  protected override moveTo(device: Device): void {
    if (device === this.op.device) return;
    const op = new Recurrent({ ...this.opOptions, device });
    // The op's current values (downloaded from the old device when they moved there).
    op.hostWeights.data.set(this.op.exportPacked());
    this.op = op;
    this.packed = RNNBase.packedOf(op);
    this.packedGrad = null;
    this.exposeParameters();
  }

  /** The packed tensor the parameters view: the op's host weights on the CPU, its device weights on CUDA. */
  private static packedOf(op: Recurrent): Tensor {
    return op.device === 'cpu' ? op.hostWeights : op.deviceWeightsSync();
  }

  /** Defines one own property per parameter, named like PyTorch's, viewing the packed weights. */
  private exposeParameters(): void {
    const previous = new Map(this.views.map((v) => [v.block.name, v.tensor]));
    this.views = [];
    for (const block of packedBlocks(this.opOptions)) {
      const isBias = block.kind === 'b_ih' || block.kind === 'b_hh';
      if (isBias && !this.bias) {
        zeroBlock(this.packed, block);
        continue;
      }
      const t = parameter(Tensor.view(this.packed, block.offset, block.shape));
      const before = previous.get(block.name);
      if (before) t.requiresGrad = before.requiresGrad;
      Object.assign(this, { [block.name]: t });
      this.views.push({ block, tensor: t, gradView: null });
    }
  }

  private run(x: Tensor, state: RecurrentState | undefined, async: boolean): MaybePromise<RecurrentOutput> {
    const s = readOptions(state, STATE_KEYS, 'recurrent state');
    const hx = (s.hx ?? null) as Tensor | null;
    const cx = (s.cx ?? null) as Tensor | null;
    const params = this.views.map((v) => v.tensor);
    const inputs = [x, hx, cx, ...params];
    const recording = shouldRecord(inputs);
    const options = {
      hx, cx, seqLengths: (s.seqLengths ?? null) as Int32Array | null, training: recording, dropout: this.training,
    };
    const op = this.op;
    const call = async ? op.forward(x, options) : op.forwardSync(x, options);
    return then(call, (f: RecurrentForwardResult) => {
      if (recording) {
        const saved = f.saved as RecurrentSaved;
        record(this.mode.toUpperCase(), inputs, [f.y, f.hy, f.cy], (grads, ctx) => this.backward(op, saved, grads, ctx, params.length), {
          saved: [x, hx, cx, this.packed],
          onRelease: () => saved.release(),
        });
      }
      return { y: f.y, hy: f.hy, cy: f.cy };
    });
  }

  private backward(op: Recurrent, saved: RecurrentSaved, grads: ReadonlyArray<Tensor | null>, ctx: BackwardContext,
    paramCount: number): MaybePromise<InputGrad[]> {
    const target = this.gradTarget();
    // A CUDA op whose forward ran on the CPU (x elsewhere): its CPU gradients are added into the
    // device gradient afterwards (host copies, named by the op's lastRun.fallback).
    const viaHost = saved.cuda === null && target.dweights.device !== 'cpu';
    const options = {
      dy: grads[0], dhy: grads[1], dcy: this.mode === 'lstm' ? grads[2] : null,
      dweights: viaHost ? null : target.dweights, accumulate: viaHost ? false : target.accumulate,
    };
    const call = ctx.async ? op.backward(saved, options) : op.backwardSync(saved, options);
    return then(call, (g: RecurrentGradients): InputGrad[] => {
      if (viaHost) addInto(target.dweights, g.dweights, target.accumulate);
      target.dweights.bumpVersion();
      return [g.dx, g.dhx, g.dcx, ...new Array<InputGrad>(paramCount).fill(ACCUMULATED)];
    });
  }

  /**
   * The packed gradient the backward adds into, with every trainable parameter's `.grad` a view
   * of it. Rebuilt (from the `.grad`s as they are) when one was dropped or replaced.
   */
  private gradTarget(): { dweights: Tensor; accumulate: boolean } {
    const live = this.views.filter((v) => v.tensor.requiresGrad);
    if (this.packedGrad && live.every((v) => v.gradView !== null && v.tensor.grad === v.gradView)) {
      return { dweights: this.packedGrad, accumulate: true };
    }
    const grad = zeros(this.packed.shape, { device: this.packed.device });
    let carried = false;
    for (const v of this.views) {
      v.gradView = Tensor.view(grad, v.block.offset, v.block.shape);
      const old = v.tensor.grad;
      if (old && v.tensor.requiresGrad) {
        if (old.size !== v.gradView.size) throw new RnnkitError('ERR_RNNKIT_SHAPE', `${v.block.name}.grad has the wrong size`);
        copyInto(v.gradView, old);
        carried = true;
      }
      if (v.tensor.requiresGrad) v.tensor.grad = v.gradView;
    }
    this.packedGrad = grad;
    return { dweights: grad, accumulate: carried };
  }
}

/** Zeroes one block of the packed weights (a bias kept out of the parameters), on its device. */
function zeroBlock(packed: Tensor, block: PackedBlock): void {
  const view = Tensor.view(packed, block.offset, block.shape);
  if (view.device === 'cpu') view.data.fill(0);
  else native().cudaFill(view.deviceBuffer, 0, false);
  packed.bumpVersion();
}

/** Copies `src` (any device) into `dst` of the same size: on the device when both are there. */
function copyInto(dst: Tensor, src: Tensor): void {
  if (dst.device === 'cpu') dst.data.set(src.device === 'cpu' ? src.data : src.readSync());
  else if (src.device === dst.device) native().copyDeviceToDevice(dst.deviceBuffer, src.deviceBuffer, false);
  else uploadSync(dst.deviceBuffer, src.device === 'cpu' ? src.data : src.readSync());
}

/** Writes (or adds, with `accumulate`) the CPU tensor `src` into the device tensor `dst`. */
function addInto(dst: Tensor, src: Tensor, accumulate: boolean): void {
  if (!accumulate) {
    copyInto(dst, src);
    return;
  }
  const moved = src.to(dst.device);
  try {
    native().cudaNnAccumulate(dst.deviceBuffer, moved.deviceBuffer, false);
  } finally {
    moved.dispose();
  }
}

/** Long short-term memory (torch.nn.LSTM). */
export class LSTM extends RNNBase {
  /** Throws ERR_RNNKIT_ARG naming a bad option (see `new Recurrent` for the rest). */
  constructor(options: LSTMOptions) {
    super('lstm', options, ['projSize', 'cellClip', 'peepholes']);
  }
}

/** Gated recurrent unit (torch.nn.GRU). */
export class GRU extends RNNBase {
  /** Throws ERR_RNNKIT_ARG naming a bad option (see `new Recurrent` for the rest). */
  constructor(options: GRUOptions) {
    super('gru', options, ['linearBeforeReset']);
  }
}

/** Elman RNN with tanh or ReLU (torch.nn.RNN). */
export class RNN extends RNNBase {
  /** Throws ERR_RNNKIT_ARG naming a bad option, nonlinearity included (see `new Recurrent` for the rest). */
  constructor(options: RNNOptions) {
    const nl = readChoice(readOptions(options, [...COMMON_KEYS, 'nonlinearity'], 'RNN options').nonlinearity, 'nonlinearity', ['tanh', 'relu'], 'tanh');
    super(nl === 'tanh' ? 'rnn_tanh' : 'rnn_relu', options, ['nonlinearity']);
  }
}
