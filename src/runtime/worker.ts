/** The worker_threads entry of ThreadPool (pool.ts): runs the pool thread's loop (worker-loop.ts). */
import { isMainThread, workerData } from "node:worker_threads";
import type { PoolWorkerData } from "./pool.js";
import { servePool } from "./worker-loop.js";

if (!isMainThread && (workerData as PoolWorkerData | undefined)?.kind === "kvsplit-pool-worker") {
  servePool(workerData as PoolWorkerData, (markExited) => process.on("exit", markExited));
}
