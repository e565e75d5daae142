/**
 * A pool thread's life (Node's worker.ts and the browser's pool-worker.ts run it): instantiate the kernels on every
 * shared memory, then loop: wait for a new generation, claim and run chunks until none is left. Never returns to its
 * event loop until told to exit, so it needs no message listeners (and keeps nothing alive).
 */
import {
  CTRL, ERROR_BYTES, MAX_TASK_ARGS, SPIN_LOOPS, WorkerState, runChunks, shardKernelTable, type PoolWorkerData,
} from "./pool.js";

/** Runs until the pool says exit. `onExit` registers what to do if the thread is torn down from outside (Node). */
export function servePool(data: PoolWorkerData, onExit?: (markExited: () => void) => void): void {
  const ints = new Int32Array(data.ints);
  const f64s = new Float64Array(data.f64s);
  const errorText = new Uint8Array(data.errorText);
  const stateSlot = CTRL.workerState + data.workerIndex;
  const thread = data.workerIndex + 1;

  /** Record the first failure of a run (later ones keep the first message). */
  const report = (e: unknown): void => {
    if (Atomics.compareExchange(ints, CTRL.errorWorker, 0, data.workerIndex + 1) !== 0) return;
    const text = new TextEncoder().encode(e instanceof Error ? `${e.name}: ${e.message}` : String(e)).subarray(0, ERROR_BYTES);
    errorText.set(text);
    Atomics.store(ints, CTRL.errorLength, text.length);
  };
  onExit?.(() => {
    if (Atomics.load(ints, stateSlot) !== WorkerState.failed) Atomics.store(ints, stateSlot, WorkerState.exited);
    Atomics.notify(ints, CTRL.completed);
  });

  let fns: Array<(...args: number[]) => unknown>;
  try {
    fns = shardKernelTable(data.module, data.memories, kernelAbort);
  } catch (e) {
    report(e);
    Atomics.store(ints, stateSlot, WorkerState.failed);
    Atomics.notify(ints, stateSlot);
    return;
  }
  const args = new Float64Array(MAX_TASK_ARGS);
  // Generation 0 is "no run yet"; the caller waits for every worker to be ready before its first run.
  let seen = 0;
  Atomics.store(ints, stateSlot, WorkerState.ready);
  Atomics.notify(ints, stateSlot);

  for (;;) {
    let generation = Atomics.load(ints, CTRL.generation);
    for (let i = 0; i < SPIN_LOOPS && generation === seen; i++) generation = Atomics.load(ints, CTRL.generation);
    while (generation === seen) {
      Atomics.wait(ints, CTRL.generation, seen);
      generation = Atomics.load(ints, CTRL.generation);
    }
    seen = generation;
    if (Atomics.load(ints, CTRL.exit) !== 0) break;
    runChunks(fns, ints, f64s, thread, args, report);
  }
  Atomics.store(ints, stateSlot, WorkerState.exited);
}

function kernelAbort(): never {
  throw new Error("WebAssembly kernel aborted");
}
