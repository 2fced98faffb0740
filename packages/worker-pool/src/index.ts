export {
  type ErrorShape,
  errorShape,
  type JobEnd,
  type JobLimit,
  type JobSpec,
  READY,
  type StartWorkerPoolOptions,
  startWorkerPool,
  WALL_CLOCK_BACKSTOP_FACTOR,
  type WorkerPool,
} from './worker-pool.ts';
