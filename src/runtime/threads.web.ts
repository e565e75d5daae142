/**
 * How the thread pool starts its threads in a browser (replaces threads.ts in the web bundle): module Web Workers
 * running pool-worker.js, which the bundle puts beside the engine worker that creates the pool.
 */
import type { PoolWorkerData } from "./pool.js";

export interface PoolThread {
  terminate(): void;
  readonly exited: Promise<void>;
}

/** A browser starts a worker only after its creator returns to the event loop: the creator awaits ThreadPool.ready(). */
export const THREADS_START_WHILE_BLOCKED = false;

export function startPoolThread(data: PoolWorkerData): PoolThread {
  const worker = new Worker(new URL("./pool-worker.js", import.meta.url), { type: "module", name: `kvsplit-pool-${data.workerIndex + 1}` });
  let exit!: () => void;
  const exited = new Promise<void>((resolve) => (exit = resolve));
  // A script that fails to load or throws is reported through the pool's state slot by a timeout (ThreadPool.ready).
  worker.onerror = () => exit();
  worker.postMessage(data);
  return {
    terminate: () => {
      worker.terminate();
      exit();
    },
    exited,
  };
}
