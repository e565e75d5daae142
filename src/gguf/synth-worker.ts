/**
 * The worker_threads entry of SynthThreads (synth-threads.ts): a private WebAssembly memory and quantizer; for each
 * job message, claim and run chunks until none is left. Idle between jobs in its event loop (unref'd by the caller).
 */
import { isMainThread, parentPort, workerData } from "node:worker_threads";
import { RowQuantizer } from "./synth-rows.js";
import {
  SYNTH_CTRL, SYNTH_ERROR_BYTES, SynthWorkerState, runSynthChunks, type SynthJobMessage, type SynthWorkerData,
} from "./synth-threads.js";

function serve(data: SynthWorkerData): void {
  const ctrl = new Int32Array(data.ctrl);
  const errorText = new Uint8Array(data.errorText);
  const stateSlot = SYNTH_CTRL.workerState + data.workerIndex;

  /** Record the first failure of a job (later ones keep the first message). */
  const report = (e: unknown): void => {
    if (Atomics.compareExchange(ctrl, SYNTH_CTRL.errorWorker, 0, data.workerIndex + 1) !== 0) return;
    const text = new TextEncoder().encode(e instanceof Error ? `${e.name}: ${e.message}` : String(e)).subarray(0, SYNTH_ERROR_BYTES);
    errorText.set(text);
    Atomics.store(ctrl, SYNTH_CTRL.errorLength, text.length);
  };
  process.on("exit", () => {
    if (Atomics.load(ctrl, stateSlot) !== SynthWorkerState.failed) Atomics.store(ctrl, stateSlot, SynthWorkerState.exited);
    Atomics.notify(ctrl, SYNTH_CTRL.completed);
  });

  let quantizer: RowQuantizer;
  try {
    quantizer = new RowQuantizer();
  } catch (e) {
    report(e);
    Atomics.store(ctrl, stateSlot, SynthWorkerState.failed);
    return;
  }
  Atomics.store(ctrl, stateSlot, SynthWorkerState.ready);
  parentPort!.on("message", (m: SynthJobMessage) => runSynthChunks(ctrl, m, quantizer, report));
}

if (!isMainThread && (workerData as SynthWorkerData | undefined)?.kind === "kvsplit-synth-worker") {
  serve(workerData as SynthWorkerData);
}
