/**
 * `rk.autograd`: the tape's public functions beyond the Tensor methods (backward, detach, hooks).
 */
export { queueCallback, BackwardOptions } from './engine';
export { isGradEnabled, setGradEnabled, noGrad, noGradSync, enableGrad } from './grad-mode';
