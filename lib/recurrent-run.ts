/**
 * What a run of the Recurrent op did (`lastRun`) and what one would do (`algorithmFor`): the
 * device the kernels ran on, the CPU ISA path, the algorithm the binding reports, and why a run
 * did not take the op's device. No silent slow paths.
 */
import { Device } from './device';
import { native } from './native';

/** What ran: no silent slow paths. */
export interface RecurrentRunInfo {
  /** Which call. */
  op: 'forward' | 'backward';
  /** Where the kernels ran. */
  device: Device;
  /** The device the op was created for. */
  requestedDevice: Device;
  /** CPU instruction-set path (portable | avx2 | avx512 | neon). */
  isa: string;
  /** The algorithm the kernels report: a CPU loop, or the CUDA algorithm (standard | persistent). */
  algorithm: string;
  /** CUDA runs: why that algorithm, in words (e.g. "persistent: 128 blocks of 4 units ..."); null on the CPU. */
  algorithmReason: string | null;
  /** Why the op did not run on the requested device or the inputs' device; null when it did. */
  fallback: string | null;
  /** Whether the forward kept what backward needs. */
  training: boolean;
  /** The dropout probability applied (0 when off). */
  dropout: number;
  /** The seed of the dropout masks of this call (0 when dropout was off and no seed was given). */
  dropoutSeed: number;
}

/** What a run of a given shape would use (`Recurrent.algorithmFor`). */
export interface RecurrentAlgorithmInfo {
  /** Where the kernels would run. */
  device: Device;
  /** CPU instruction-set path (portable | avx2 | avx512 | neon). */
  isa: string;
  /** The algorithm: a CPU loop, or the CUDA algorithm (standard | persistent). */
  algorithm: string;
  /** On CUDA: why that algorithm for this shape, in words; null on the CPU. */
  algorithmReason: string | null;
  /** Why it would not run on the op's device (CPU inputs to a CUDA op are reported at run time). */
  fallback: string | null;
}

/**
 * Why a CPU run of an op made for `opDevice`, with x on `inputDevice`, did not run on the op's or
 * the inputs' device (null when it ran where it should). A CUDA op whose x is on its device runs on
 * the CPU only for the backward of a saved made by a CPU forward.
 */
export function fallbackReason(opDevice: Device, inputDevice: Device): string | null {
  if (opDevice !== 'cpu') {
    if (inputDevice === 'cpu') return `inputs are on the CPU: ran on the CPU instead of ${opDevice}`;
    if (inputDevice !== opDevice) return `inputs on ${inputDevice}, op on ${opDevice}: ran on the CPU`;
    return `the saved comes from a CPU forward: ran on the CPU instead of ${opDevice}`;
  }
  if (inputDevice !== 'cpu') return `inputs on ${inputDevice} were copied to the CPU`;
  return null;
}

/** The run info of one call; `algorithm` and `reason` null for a CPU run (the binding names its loop). */
export function runInfo(run: Omit<RecurrentRunInfo, 'isa' | 'algorithm' | 'algorithmReason'>, algorithm: string | null,
  reason: string | null): RecurrentRunInfo {
  const info = native().recurrentInfo();
  return { ...run, isa: info.isa, algorithm: algorithm ?? info.algorithm, algorithmReason: reason };
}
