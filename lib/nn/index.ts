/**
 * `rk.nn`: modules that own their parameters, differentiable functions recorded on the autograd
 * tape, and the losses (docs/nn.md).
 *
 * Examples: [Models: rk.nn and autograd](../../README.md#models-and-autograd), [Two more examples on the nn modules](../../README.md#two-more-examples-on-the-nn-modules) ([examples/classify-spam.js](../../examples/classify-spam.js), [examples/g2p.js](../../examples/g2p.js)), [the main job](../../README.md#the-main-job) ([examples/demo.js](../../examples/demo.js)); [docs/nn.md](../../docs/nn.md).
 * @module
 */
import './kernels-cuda';  // registers the CUDA kernels of every nn function and module
export { Module, StateDict, StateDictValue, LoadStateDictOptions, LoadStateDictResult, ZeroGradOptions } from './module';
export { parameter, isParameter } from './parameter';
export { Linear } from './modules/linear';
export { LinearOptions } from '../train/linear';
export { Embedding, EmbeddingOptions } from './modules/embedding';
export {
  RNNBase, LSTM, GRU, RNN, RecurrentModuleOptions, LSTMOptions, GRUOptions, RNNOptions, RecurrentState, RecurrentOutput,
} from './modules/recurrent';
export { Dropout, DropoutOptions } from './modules/dropout';
export { RMSNorm, RMSNormOptions } from './modules/rmsnorm';
export { Sequential } from './modules/sequential';
export { tanh, tanhSync, sigmoid, sigmoidSync, relu, reluSync } from './functions/activations';
export { add, addSync, mul, mulSync, Operand } from './functions/arithmetic';
export { sum, sumSync, mean, meanSync, ReduceOptions } from './functions/reductions';
export { concat, concatSync, narrow, narrowSync, reshape } from './functions/shape';
export { crossEntropy, crossEntropySync, mseLoss, mseLossSync, NnCrossEntropyOptions, NnMseOptions } from './functions/losses';
export { noGrad, noGradSync, enableGrad, isGradEnabled, setGradEnabled } from './grad-mode';
export { DistributedDataParallel, DistributedDataParallelOptions } from '../distributed/ddp';
