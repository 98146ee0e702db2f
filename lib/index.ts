/** rnnkit: recurrent-network operators for Node.js. */
export { RnnkitError, RnnkitErrorCode } from './errors';
export { Tensor, TensorOptions, tensor, zeros, ones, full } from './tensor';
export { Device, DeviceSpec, BackendInfo, backendInfo, setNumThreads, numThreads } from './device';
export { matmul, matmulSync, MatmulOptions } from './matmul';
