/** rnnkit: recurrent-network operators for Node.js. */
export { RnnkitError, RnnkitErrorCode } from './errors';
export { Tensor, TensorOptions, PostAccumulateGradHook, tensor, zeros, ones, full } from './tensor';
export { IndexTensor, IndexBounds, indexTensor } from './index-tensor';
export {
  Device, DeviceSpec, BackendInfo, CopyCounts, LiveObjects, LoadAttempt, CudaDeviceInfo, backendInfo, defaultDevice, setNumThreads, numThreads,
} from './device';
export { HostCacheInfo, releaseCachedMemory } from './host-cache';
export { OpRunInfo } from './run-info';
export { matmul, matmulSync, MatmulOptions } from './matmul';
export {
  RMSNorm, RMSNormConfig, RMSNormForwardOptions, RMSNormBackwardArgs, rmsNorm, rmsNormSync, rmsNormBackward,
  rmsNormBackwardSync, RmsNormOptions, RmsNormResult, RmsNormBackwardOptions, RmsNormGradients,
} from './rmsnorm';
export {
  Recurrent, RecurrentSaved, RecurrentOptions, RecurrentForwardOptions, RecurrentForwardResult,
  RecurrentBackwardOptions, RecurrentGradients, RecurrentRunInfo, RecurrentAlgorithm, RecurrentAlgorithmInfo, RecurrentSettings,
} from './recurrent';
export {
  ParamSelector, ParamKind, GateName, RecurrentMode, WeightsFormat, WeightsRecord, RecurrentLayoutConfig, recordShapes,
} from './recurrent-params';
export * from './train';
export { setCheckFinite, checkFiniteEnabled } from './check';
export { RecurrentNetwork, StepNetBuilder, StepNetSaved } from './stepnet';
export type {
  StepNetSpec, StepOpSpec, StepOpType, StepExecutor, StepForwardOptions, StepForwardResult, StepGradients, BlobDescription,
} from './stepnet';
export * as nn from './nn';
export * as autograd from './nn/autograd';
export { saveSafetensors, loadSafetensors } from './nn/serialize';
export * as distributed from './distributed';
