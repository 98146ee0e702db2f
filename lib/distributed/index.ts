/**
 * Data-parallel training across processes and hosts: process groups, collectives, the sampler (docs/distributed.md).
 *
 * Examples: [Distributed training](../../README.md#distributed-training), [docs/distributed.md](../../docs/distributed.md).
 * @module
 */
export { initProcessGroup, initProcessGroupSync, ProcessGroup, ReduceOp, AllReduceOptions, BroadcastOptions } from './process-group';
export { InitProcessGroupOptions, BackendChoice } from './options';
export { backends, backendStatus, BackendName, BackendStatus } from './addon';
export { DistributedSampler, DistributedSamplerOptions } from './sampler';
export { DistributedDataParallel, DistributedDataParallelOptions } from './ddp';
