/**
 * `rk.autograd`: the tape's public functions beyond the Tensor methods (backward, detach, hooks).
 *
 * Examples: [Models: rk.nn and autograd](../../README.md#models-and-autograd).
 * @module
 */
export { queueCallback, BackwardOptions } from './engine';
export { isGradEnabled, setGradEnabled, noGrad, noGradSync, enableGrad } from './grad-mode';
