/**
 * Row-wise kernels of a batch (one row per token: swiglu, the activations' quantization) split across the pool's
 * threads when the batch is large enough to repay a sync; each row is computed by one thread with the same kernel,
 * so the result is the same for every thread count. Smaller batches (one token while generating) run on the caller.
 */
import type { ParallelTask, ThreadPool } from "../runtime/pool.js";
import type { WasmRuntime } from "../runtime/wasm.js";

/**
 * Below this many values in all rows a sync (15–70 µs) costs more than the second thread saves, for kernels of a few
 * nanoseconds a value (the activations' quantization).
 */
export const PARALLEL_ROW_VALUES = 64 * 1024;
/**
 * The same for swiglu, about 8 ns a value (a scalar exp per value): split from 16K values on, so that a server's four
 * streams (4 × 5632 values in TinyLlama) share it.
 */
export const PARALLEL_SWIGLU_VALUES = 16 * 1024;

export class RowRunner {
  /** Reused: run() allocates nothing once warm. */
  private readonly task: ParallelTask = { kernel: "", args: [], count: 0, startArg: 0, endArg: 0 };
  private readonly batch: ParallelTask[] = [this.task];

  constructor(
    private readonly rt: WasmRuntime,
    private readonly pool?: ThreadPool,
  ) {}

  /**
   * kernel(...args) over rows [0, nRows): args[startArg] and args[endArg] are the row range (set here), each row
   * `rowValues` values; split across the threads from `parallelValues` values in all rows on.
   */
  run(kernel: string, args: number[], startArg: number, endArg: number, nRows: number, rowValues: number, parallelValues = PARALLEL_ROW_VALUES): void {
    args[startArg] = 0;
    args[endArg] = nRows;
    if (!this.pool || this.pool.nThreads === 1 || nRows < 2 || nRows * rowValues < parallelValues) {
      this.rt.k[kernel](...args);
      return;
    }
    const t = this.task;
    t.kernel = kernel;
    t.args = args;
    t.count = nRows;
    t.startArg = startArg;
    t.endArg = endArg;
    t.shard = this.rt.shard;
    this.pool.run(this.batch);
  }
}
