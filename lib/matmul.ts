/** matmul: C = op(A)·op(B) for 2-D tensors, on the native SGEMM. */
import { RnnkitError } from './errors';
import { native } from './native';
import { Tensor, checkTensor } from './tensor';

export interface MatmulOptions {
  transA?: boolean;
  transB?: boolean;
  /** Write into this [M, N] CPU tensor instead of a new one. */
  out?: Tensor;
  /** Add the product into `out` (requires `out`). */
  accumulate?: boolean;
}

interface MatmulPlan {
  a: Float32Array;
  b: Float32Array;
  out: Tensor;
  M: number;
  N: number;
  K: number;
  transA: boolean;
  transB: boolean;
  accumulate: boolean;
  device: Tensor['device'];
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
  if (accumulate && !options.out) throw new RnnkitError('ERR_RNNKIT_ARG', 'accumulate needs an out tensor');
  let out: Tensor;
  if (options.out) {
    out = checkTensor(options.out, 'out', 2);
    if (out.shape[0] !== M || out.shape[1] !== N) {
      throw new RnnkitError('ERR_RNNKIT_SHAPE', `out must be [${M}, ${N}], got [${out.shape.join(', ')}]`);
    }
    if (out.device !== a.device) throw new RnnkitError('ERR_RNNKIT_DEVICE', `out is on ${out.device}, inputs on ${a.device}`);
  } else {
    out = Tensor.fromCpu(new Float32Array(M * N), [M, N]);
  }
  if (a.device !== 'cpu') {
    // Until the CUDA GEMM lands, CUDA operands are multiplied on the CPU.
    const host = Tensor.fromCpu(out.device === 'cpu' ? out.data : out.readSync(), [M, N]);
    return { a: a.readSync(), b: b.readSync(), out: host, M, N, K, transA, transB, accumulate, device: a.device };
  }
  return { a: a.data, b: b.data, out, M, N, K, transA, transB, accumulate, device: 'cpu' };
}

function finish(p: MatmulPlan, options: MatmulOptions): Tensor {
  if (p.device === 'cpu') return p.out;
  if (options.out) {
    native().copyToDevice(options.out.deviceBuffer, p.out.data, false);
    return options.out;
  }
  return p.out.to(p.device);
}

/** C = op(A)·op(B), computed off the event loop. */
export async function matmul(a: Tensor, b: Tensor, options: MatmulOptions = {}): Promise<Tensor> {
  const p = plan(a, b, options);
  await native().matmul(p.a, p.b, p.out.data, p.M, p.N, p.K, p.transA, p.transB, p.accumulate, true);
  return finish(p, options);
}

/** C = op(A)·op(B) on the calling thread. */
export function matmulSync(a: Tensor, b: Tensor, options: MatmulOptions = {}): Tensor {
  const p = plan(a, b, options);
  native().matmul(p.a, p.b, p.out.data, p.M, p.N, p.K, p.transA, p.transB, p.accumulate, false);
  return finish(p, options);
}
