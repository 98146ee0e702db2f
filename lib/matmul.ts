/**
 * matmul: C = op(A)·op(B) for 2-D tensors. CPU tensors run the native SGEMM; CUDA tensors run our
 * CUDA GEMM on the device (fp32, or TF32 tensor cores when `tf32` is set), with no host copies.
 *
 * Examples: [A first program](../README.md#a-first-program), [matmul](../README.md#matmul).
 * @module
 */
import { RnnkitError } from './errors';
import { checkInputsFinite } from './check';
import { native } from './native';
import { Tensor, checkTensor, deviceTensor } from './tensor';
import { allocFloats, argError, readBoolean, readOptions, readTensorOrNull, sizeProduct } from './args';

/** Options of `matmul` / `matmulSync`: C = op(A) · op(B). */
export interface MatmulOptions {
  /** Use Aᵀ (A stored [K, M]). */
  transA?: boolean;
  /** Use Bᵀ (B stored [N, K]). */
  transB?: boolean;
  /** Write into this [M, N] tensor (on the operands' device) instead of a new one. */
  out?: Tensor;
  /** Add the product into `out` (requires `out`). */
  accumulate?: boolean;
  /**
   * CUDA tensors only: allow TF32 tensor cores (inputs rounded to a 10-bit mantissa, fp32
   * accumulation; relative error up to ~1e-3 of sum |a·b|). Ignored on the CPU, which is always
   * fp32, and for products with M <= 16 or on GPUs older than compute capability 8.0.
   */
  tf32?: boolean;
}

const OPTION_KEYS = ['transA', 'transB', 'out', 'accumulate', 'tf32'] as const;

/** The checked operands: sizes, flags, and the caller's `out` when given. */
interface MatmulPlan {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  tf32: boolean;
  out: Tensor | undefined;
}

function plan(a: Tensor, b: Tensor, options: MatmulOptions | undefined): MatmulPlan {
  const o = readOptions(options, OPTION_KEYS, 'matmul options');
  checkTensor(a, 'a', 2);
  checkTensor(b, 'b', 2);
  const transA = readBoolean(o.transA, 'transA', false);
  const transB = readBoolean(o.transB, 'transB', false);
  const accumulate = readBoolean(o.accumulate, 'accumulate', false);
  const tf32 = readBoolean(o.tf32, 'tf32', false);
  if (a.device !== b.device) {
    throw new RnnkitError('ERR_RNNKIT_DEVICE', `a is on ${a.device} and b on ${b.device}: move one with to()`);
  }
  const [M, K] = transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
  const [Kb, N] = transB ? [b.shape[1], b.shape[0]] : [b.shape[0], b.shape[1]];
  if (K !== Kb) {
    throw new RnnkitError('ERR_RNNKIT_SHAPE',
      `matmul: op(a) is [${M}, ${K}] and op(b) is [${Kb}, ${N}]; inner sizes differ`);
  }
  checkInputsFinite({ a, b });
  const out = readTensorOrNull(o.out, 'out', [M, N]) ?? undefined;
  if (accumulate && !out) throw argError('accumulate needs an out tensor');
  if (out && out.device !== a.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `out is on ${out.device}, inputs on ${a.device}`);
  return { M, N, K, transA, transB, accumulate, tf32, out };
}

/**
 * Queues the product of two CUDA tensors on the device. A new `out` is not cleared first: the GEMM
 * overwrites it without reading it (beta = 0).
 */
function runCuda(a: Tensor, b: Tensor, p: MatmulPlan, async: boolean): { out: Tensor; done: Promise<void> | undefined } {
  const out = p.out || deviceTensor(a.device, [p.M, p.N]);
  try {
    const done = native().cudaMatmul(a.deviceBuffer, b.deviceBuffer, out.deviceBuffer, p.M, p.N, p.K,
      p.transA, p.transB, p.accumulate, p.tf32, async);
    return { out, done };
  } catch (err) {
    if (!p.out) out.dispose();
    throw err;
  }
}

function cpuOut(p: MatmulPlan): Tensor {
  return p.out || Tensor.fromCpu(allocFloats(sizeProduct([p.M, p.N], 'out'), `out [${p.M}, ${p.N}]`, 'matmul'), [p.M, p.N]);
}

/** C = op(A)·op(B), computed off the event loop. */
export async function matmul(a: Tensor, b: Tensor, options?: MatmulOptions): Promise<Tensor> {
  const p = plan(a, b, options);
  if (a.device !== 'cpu') {
    const { out, done } = runCuda(a, b, p, true);
    await done;
    return written(p, out);
  }
  const out = cpuOut(p);
  await native().matmul(a.data, b.data, out.data, p.M, p.N, p.K, p.transA, p.transB, p.accumulate, true);
  return written(p, out);
}

/** C = op(A)·op(B) on the calling thread. */
export function matmulSync(a: Tensor, b: Tensor, options?: MatmulOptions): Tensor {
  const p = plan(a, b, options);
  if (a.device !== 'cpu') return written(p, runCuda(a, b, p, false).out);
  const out = cpuOut(p);
  native().matmul(a.data, b.data, out.data, p.M, p.N, p.K, p.transA, p.transB, p.accumulate, false);
  return written(p, out);
}

/** A caller's `out` was written in place: its version counter records it. */
function written(p: MatmulPlan, out: Tensor): Tensor {
  if (p.out) out.bumpVersion();
  return out;
}
