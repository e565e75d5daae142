/**
 * How the thread pool starts its threads in Node: worker_threads running worker.js. The browser bundle replaces this
 * file with threads.web.ts (Web Workers).
 */
import { Worker } from "node:worker_threads";
import type { PoolWorkerData } from "./pool.js";

export interface PoolThread {
  terminate(): void;
  /** Resolves when the thread has exited. */
  readonly exited: Promise<void>;
}

/**
 * Whether a pool may block its creator until the threads have started. Node starts a worker on its own; a browser
 * starts a worker only once its creator returns to the event loop, so there the creator awaits ThreadPool.ready().
 */
export const THREADS_START_WHILE_BLOCKED = true;

/**
 * Start one unref'd pool thread. A module-level function on purpose: the listeners' closures must not capture a
 * ThreadPool (a live worker would then keep its pool reachable and the pool's finalizer could never run).
 */
export function startPoolThread(data: PoolWorkerData): PoolThread {
  const worker = new Worker(new URL("./worker.js", import.meta.url), { workerData: data });
  worker.unref();
  // An 'error' event is also reported through the state slot; listening keeps it from becoming uncaught.
  worker.on("error", () => {});
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
  return { terminate: () => void worker.terminate(), exited };
}
