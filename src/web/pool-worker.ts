/** A browser thread of the kernels' pool (threads.web.ts starts it): the first message is its PoolWorkerData. */
import type { PoolWorkerData } from "../runtime/pool.js";
import { servePool } from "../runtime/worker-loop.js";

self.onmessage = (e: MessageEvent<PoolWorkerData>) => {
  self.onmessage = null;
  servePool(e.data);
};
