/**
 * matmul: C = op(A)·op(B) for 2-D tensors. CPU tensors run the native SGEMM; CUDA tensors run our
 * CUDA GEMM on the device (fp32, or TF32 tensor cores when `tf32` is set), with no host copies.
 */
import { RnnkitError } from './errors';
import { checkInputsFinite } from './check';
import { native, DeviceBuffer } from './native';
import { deviceIndex } from './device';
import { Tensor, checkTensor } from './tensor';

export interface MatmulOptions {
  transA?: boolean;
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

/** The CUDA GEMM binding (native/napi/cuda_ops.cc). */
type CudaMatmul = (a: DeviceBuffer, b: DeviceBuffer, out: DeviceBuffer, M: number, N: number, K: number,
  transA: boolean, transB: boolean, accumulate: boolean, tf32: boolean, async: boolean) => Promise<void> | undefined;

/** The checked operands: sizes, flags, and the caller's `out` when given. */
interface MatmulPlan {
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  out: Tensor | undefined;
}

function plan(a: Tensor, b: Tensor, options: MatmulOptions): MatmulPlan {
  checkTensor(a, 'a', 2);
  checkTensor(b, 'b', 2);
  const transA = options.transA === true;
  const transB = options.transB === true;
  const accumulate = options.accumulate === true;
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
  if (accumulate && !options.out) throw new RnnkitError('ERR_RNNKIT_ARG', 'accumulate needs an out tensor');
  let out: Tensor | undefined;
  if (options.out) {
    out = checkTensor(options.out, 'out', 2);
    if (out.shape[0] !== M || out.shape[1] !== N) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `out must be [${M}, ${N}], got [${out.shape.join(', ')}]`);
    }
    if (out.device !== a.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `out is on ${out.device}, inputs on ${a.device}`);
  }
  return { M, N, K, transA, transB, accumulate, out };
}

/**
 * Queues the product of two CUDA tensors on the device. A new `out` is not cleared first: the GEMM
 * overwrites it without reading it (beta = 0).
 */
function runCuda(a: Tensor, b: Tensor, p: MatmulPlan, tf32: boolean, async: boolean): { out: Tensor; done: Promise<void> | undefined } {
  const out = p.out || Tensor.fromDevice(new (native().DeviceBuffer)(deviceIndex(a.device), p.M * p.N * 4), a.device, [p.M, p.N]);
  try {
    const done = (native().cudaMatmul as CudaMatmul)(a.deviceBuffer, b.deviceBuffer, out.deviceBuffer, p.M, p.N, p.K,
      p.transA, p.transB, p.accumulate, tf32, async);
    return { out, done };
  } catch (err) {
    if (!p.out) out.dispose();
    throw err;
  }
}

function cpuOut(p: MatmulPlan): Tensor {
  return p.out || Tensor.fromCpu(new Float32Array(p.M * p.N), [p.M, p.N]);
}

/** C = op(A)·op(B), computed off the event loop. */
export async function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Promise<Tensor> {
  const p = plan(a, b, options);
  if (a.device !== 'cpu') {
    const { out, done } = runCuda(a, b, p, options.tf32 === true, true);
    await done;
    return out;
  }
  const out = cpuOut(p);
  await native().matmul(a.data, b.data, out.data, p.M, p.N, p.K, p.transA, p.transB, p.accumulate, true);
  return out;
}

/** C = op(A)·op(B) on the calling thread. */
export function matmulSync(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const p = plan(a, b, options);
  if (a.device !== 'cpu') return runCuda(a, b, p, options.tf32 === true, false).out;
  const out = cpuOut(p);
  native().matmul(a.data, b.data, out.data, p.M, p.N, p.K, p.transA, p.transB, p.accumulate, false);
  return out;
}
