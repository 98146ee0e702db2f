/**
 * What ran where: every op that can run on a CUDA device records its last call here (and op
 * objects such as optimizers and RMSNorm also keep their own `lastRun`), so no slow path is
 * silent. `backendInfo().lastRuns` returns the records, keyed by op name.
 *
 * Examples: [GPU status](../README.md#gpu-status), [How loading and the CPU fallback work](../README.md#how-loading-and-the-cpu-fallback-work).
 * @module
 */
import { Device } from './device';

/** One op's last call. */
export interface OpRunInfo {
  /** The op, e.g. 'crossEntropy', 'clipGradNorm', 'Adam.step', 'rmsNorm'. */
  op: string;
  /** Where its kernels ran. */
  device: Device;
  /** Why it ran elsewhere than its inputs' device, or copied data between host and device; null when it did not. */
  fallback: string | null;
}

const runs = new Map<string, OpRunInfo>();

/** @internal Records a call and returns the record. */
export function recordRun(op: string, device: Device, fallback: string | null = null): OpRunInfo {
  const info = { op, device, fallback };
  runs.set(op, info);
  return info;
}

/** @internal The last call of one op (null before its first). */
export function lastRunOf(op: string): OpRunInfo | null {
  const r = runs.get(op);
  return r ? { ...r } : null;
}

/** The last call of every op that has run, by op name. @internal */
export function lastRuns(): Record<string, OpRunInfo> {
  const out: Record<string, OpRunInfo> = {};
  for (const [k, v] of runs) out[k] = { ...v };
  return out;
}
