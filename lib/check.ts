/**
 * Opt-in finite-value checks. Off by default: NaN and infinities in inputs propagate through the
 * ops as IEEE arithmetic says (no crash, no hang). With `setCheckFinite(true)` every op first scans
 * its tensor inputs and throws ERR_RNNKIT_NONFINITE naming the tensor and the first bad element.
 *
 * Examples: [Guarantees](../README.md#guarantees).
 * @module
 */
import { RnnkitError } from './errors';
import { readBoolean } from './args';
import { native } from './native';
import { Tensor } from './tensor';

let enabled = (process.env.RNNKIT_CHECK_FINITE || '') === '1';

/** Turns on (or off) the check of every op's inputs for NaN and infinities (`ERR_RNNKIT_NONFINITE`). */
export function setCheckFinite(on: boolean): void {
  enabled = readBoolean(on, 'setCheckFinite(on): on');
}

/** Whether ops check their inputs for non-finite values (`setCheckFinite`, `RNNKIT_CHECK_FINITE=1`). */
export function checkFiniteEnabled(): boolean {
  return enabled;
}

/** Throws ERR_RNNKIT_NONFINITE when `t` holds a NaN or an infinity. @internal */
export function assertFinite(t: Tensor, what: string): void {
  const values = t.device === 'cpu' ? t.data : t.readSync();
  const at = native().firstNonFinite(values);
  if (at >= 0) {
    throw new RnnkitError('ERR_RNNKIT_NONFINITE', `${what} holds a non-finite value (${values[at]}) at element ${at}`);
  }
}

/** Checks each named tensor when checkFinite is on (absent ones are skipped). @internal */
export function checkInputsFinite(inputs: Record<string, Tensor | null | undefined>): void {
  if (!enabled) return;
  for (const [name, t] of Object.entries(inputs)) if (t) assertFinite(t, name);
}
