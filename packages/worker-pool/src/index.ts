export {
  type ErrorShape,
  errorShape,
  type JobEnd,
  type JobSpec,
  READY,
  type StartWorkerPoolOptions,
  startWorkerPool,
  type WorkerPool,
} from './worker-pool.ts';
