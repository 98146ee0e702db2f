/** Data-parallel training across processes and hosts: process groups, collectives, the sampler. */
export { initProcessGroup, initProcessGroupSync, ProcessGroup, ReduceOp, AllReduceOptions, BroadcastOptions } from './process-group';
export { InitProcessGroupOptions, BackendChoice } from './options';
export { backends, backendStatus, BackendName, BackendStatus } from './addon';
