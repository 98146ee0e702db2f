/**
 * Training: layers, losses, optimizers, clipping, schedules, checkpoints and truncated BPTT.
 *
 * Examples: [Training](../../README.md#training), [the main job](../../README.md#the-main-job) ([examples/demo.js](../../examples/demo.js)).
 * @module
 */
export { Linear, LinearOptions, LinearBackwardOptions, LinearGradients } from './linear';
export {
  crossEntropy, crossEntropySync, mseLoss, mseLossSync, CrossEntropyOptions, CrossEntropyResult, MseOptions, MseResult, Reduction,
} from './losses';
export {
  Optimizer, SGD, Adam, AdamW, Adagrad, RMSprop, ParamGroup, Grads, ParamState, LiveParamState, OptimizerRunInfo, StepArgs,
  OptimizerStateDict, OptimizerSpec, Hyper, HyperCheck,
  SgdOptions, AdamOptions, AdagradOptions, RmspropOptions,
} from './optim';
export { StepKernels } from './native-train';
export { MaybePromise } from '../nn/maybe';
export { clipGradNorm, clipGradNormSync, clipGradValue, clipGradValueSync, globalNormSync, ClipNormOptions } from './clip';
export { LRScheduler, StepLR, CosineAnnealingLR, LinearWarmup, Schedule, SchedulerState } from './schedule';
export { encodeSafetensors, decodeSafetensors, SafetensorsEntry, SafetensorsFile } from './safetensors';
export { saveCheckpoint, loadCheckpoint, CheckpointContents, LoadCheckpointOptions, LoadedCheckpoint } from './checkpoint';
export { tbptt, TbpttOptions, TbpttResult, RecurrentModel, ChunkInfo, SegmentInfo } from './tbptt';
export { Rng, RngState } from './random';
