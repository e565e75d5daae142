/**
 * Synthetic tensors on several threads: the calling thread plus (threads − 1) worker_threads each generate AND
 * quantize chunks of rows (synth-rows.ts), so the normal stream (JavaScript: Math.log/sin/cos) runs in parallel too.
 *
 * Why not runtime/pool.ts: its workers run WebAssembly kernels only (generation is JavaScript, so it would stay on one
 * thread), and the K-quant quantizers keep a static scratch area in their memory, so two threads of one memory must
 * not run them at once. Here every thread has its own memory, and only the output buffer is shared.
 *
 * Bytes do not depend on the thread count: before a tensor's chunks are handed out, the calling thread steps the
 * xoshiro state through the tensor (no transcendental math: ~1 ns per value) and records the state at each chunk's
 * first value; a chunk then produces exactly the values the sequential stream has there.
 *
 * Handoff (as in pool.ts): the caller posts the job to every worker and claims chunks itself with a compare-exchange
 * on a shared claim word tagged with the job number, so a worker that reads a job late claims nothing of the next
 * one, and a worker the OS has not scheduled never stalls the caller. A chunk that throws is reported through shared
 * memory; a worker that dies is noticed in the caller's timed waits. Workers are unref'd and started lazily (small
 * tensors stay on the calling thread).
 */
import { Worker } from "node:worker_threads";
import { rowBytes, getFormat } from "../formats/table.js";
import { RowQuantizer, chunkCount, rowsPerChunk, seedState, skipNormals, type RowsJob } from "./synth-rows.js";

/** Int32 slots of the control block shared with the workers. */
export const SYNTH_CTRL = {
  claim: 0, // (job tag << CLAIM_INDEX_BITS) | next unclaimed chunk; CLAIM_CLOSED between jobs
  completed: 1, // chunks finished in the current job
  errorWorker: 2, // 0: no error; else 1 + index of the first worker whose chunk threw
  errorLength: 3, // bytes of its UTF-8 message
  workerState: 4, // + worker index: SynthWorkerState
} as const;
export const SynthWorkerState = { starting: 0, ready: 1, exited: 2, failed: 3 } as const;
export const SYNTH_CLAIM_INDEX_BITS = 20;
export const SYNTH_CLAIM_CLOSED = -1;
const TAG_MASK = (1 << (31 - SYNTH_CLAIM_INDEX_BITS)) - 1;
export const SYNTH_ERROR_BYTES = 4096;
const MAX_WORKERS = 255;
const PARALLEL_MIN_VALUES = 1 << 21;
const WAIT_SLICE_MS = 50;

/** What a worker receives as workerData. */
export interface SynthWorkerData {
  kind: "kvsplit-synth-worker";
  ctrl: SharedArrayBuffer; // Int32 (SYNTH_CTRL.workerState + workers)
  errorText: SharedArrayBuffer; // u8 (SYNTH_ERROR_BYTES)
  workerIndex: number;
}

/** A job message: the tensor, where each chunk's stream starts, and where its bytes go. */
export interface SynthJobMessage {
  tag: number;
  job: RowsJob;
  nChunks: number;
  /** Int32 (nChunks × 4): xoshiro state at each chunk's first value. */
  states: SharedArrayBuffer;
  /** The tensor's bytes (rows × rowBytes) from offset 0 (the buffer may be larger). */
  out: SharedArrayBuffer;
}

/**
 * Claim and run chunks of job `m` until none is left or another job has begun (called by the caller and by every
 * worker). A chunk that throws goes to `onError` BEFORE it counts as completed; claiming goes on.
 */
export function runSynthChunks(ctrl: Int32Array, m: SynthJobMessage, quantizer: RowQuantizer, onError: (e: unknown) => void, onChunk?: () => void): void {
  const perChunk = rowsPerChunk(m.job);
  const bytesPerRow = rowBytes(getFormat(m.job.format), m.job.ne0);
  const states = new Int32Array(m.states);
  const out = new Uint8Array(m.out);
  const indexMask = (1 << SYNTH_CLAIM_INDEX_BITS) - 1;
  for (;;) {
    const claim = Atomics.load(ctrl, SYNTH_CTRL.claim);
    if (claim === SYNTH_CLAIM_CLOSED || claim >>> SYNTH_CLAIM_INDEX_BITS !== m.tag) return;
    const chunk = claim & indexMask;
    if (chunk >= m.nChunks) return;
    if (Atomics.compareExchange(ctrl, SYNTH_CTRL.claim, claim, claim + 1) !== claim) continue;
    try {
      const r0 = chunk * perChunk;
      const r1 = Math.min(m.job.rows, r0 + perChunk);
      quantizer.quantizeRows(m.job, r0, r1, states.slice(chunk * 4, chunk * 4 + 4), out.subarray(r0 * bytesPerRow, r1 * bytesPerRow));
    } catch (e) {
      onError(e);
    }
    if (Atomics.add(ctrl, SYNTH_CTRL.completed, 1) + 1 === m.nChunks) Atomics.notify(ctrl, SYNTH_CTRL.completed);
    onChunk?.();
  }
}

export class SynthThreadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SynthThreadError";
  }
}

export interface SynthThreadsOptions {
  /**
   * tensor() returns a view of one reused buffer, valid until the next call (for a writer that consumes each tensor
   * at once: without it every large tensor is copied out of the shared buffer).
   */
  reuseOutput?: boolean;
  /** Tensors with fewer values stay on the calling thread (default 2^21: starting workers costs more; tests use 0). */
  parallelMinValues?: number;
}

export class SynthThreads {
  readonly nThreads: number;
  private readonly reuseOutput: boolean;
  private readonly parallelMinValues: number;
  private quantizer: RowQuantizer | undefined;
  /**
   * Shared with the workers and reused for every tensor (grown when needed): a new SharedArrayBuffer per tensor would
   * stay alive until each idle worker happened to collect its garbage (gigabytes for an 8B model).
   */
  private outBuffer: SharedArrayBuffer | undefined;
  private statesBuffer: SharedArrayBuffer | undefined;
  private workers: Worker[] = [];
  private ctrl: Int32Array | undefined;
  private errorText: Uint8Array | undefined;
  private tag = 0;
  private broken: string | undefined;
  private disposed = false;

  constructor(nThreads = 1, opts: SynthThreadsOptions = {}) {
    if (!Number.isInteger(nThreads) || nThreads < 1 || nThreads > MAX_WORKERS + 1) {
      throw new RangeError(`synth: threads must be an integer in [1, ${MAX_WORKERS + 1}], got ${nThreads}`);
    }
    this.nThreads = nThreads;
    this.reuseOutput = opts.reuseOutput ?? false;
    this.parallelMinValues = opts.parallelMinValues ?? PARALLEL_MIN_VALUES;
  }

  /**
   * The tensor's bytes: job.rows rows, the values of the stream seeded with `seed`, quantized to job.format.
   * `onRows(rowsDone)` reports progress (at least once per chunk on the calling thread, and at the end).
   * With reuseOutput, the bytes may be a view that the next call overwrites.
   */
  tensor(job: RowsJob, seed: number, onRows?: (rowsDone: number) => void): Uint8Array {
    if (this.disposed) throw new SynthThreadError("synth: the threads have been disposed");
    if (this.broken) throw new SynthThreadError(this.broken);
    this.quantizer ??= new RowQuantizer();
    const bytesPerRow = rowBytes(getFormat(job.format), job.ne0);
    const perChunk = rowsPerChunk(job);
    const nChunks = chunkCount(job);
    if (this.nThreads === 1 || nChunks === 1 || job.rows * job.ne0 < this.parallelMinValues) {
      // One thread: the stream simply continues from chunk to chunk.
      const out = new Uint8Array(job.rows * bytesPerRow); // (rows, bytesPerRow)
      const state = seedState(seed);
      for (let r0 = 0; r0 < job.rows; r0 += perChunk) {
        const r1 = Math.min(job.rows, r0 + perChunk);
        this.quantizer.quantizeRows(job, r0, r1, state, out.subarray(r0 * bytesPerRow, r1 * bytesPerRow));
        onRows?.(r1);
      }
      return out;
    }
    return this.parallel(job, seed, nChunks, perChunk, bytesPerRow, onRows);
  }

  private parallel(job: RowsJob, seed: number, nChunks: number, perChunk: number, bytesPerRow: number, onRows?: (rowsDone: number) => void): Uint8Array {
    // Strictly fewer: claiming past the last index must not carry into the tag.
    if (nChunks >= 1 << SYNTH_CLAIM_INDEX_BITS) throw new RangeError(`synth: ${nChunks} chunks; fewer than ${1 << SYNTH_CLAIM_INDEX_BITS} allowed`);
    this.startWorkers();
    const ctrl = this.ctrl!;
    const nBytes = job.rows * bytesPerRow;
    if (!this.outBuffer || this.outBuffer.byteLength < nBytes) this.outBuffer = new SharedArrayBuffer(Math.max(nBytes, 2 * (this.outBuffer?.byteLength ?? 0)));
    if (!this.statesBuffer || this.statesBuffer.byteLength < nChunks * 16) this.statesBuffer = new SharedArrayBuffer(Math.max(nChunks * 16, 2 * (this.statesBuffer?.byteLength ?? 0)));
    const states = this.statesBuffer;
    const stateView = new Int32Array(states, 0, nChunks * 4); // (nChunks, 4)
    const state = seedState(seed);
    for (let c = 0; c < nChunks; c++) {
      stateView.set(state, c * 4);
      if (c + 1 < nChunks) skipNormals(state, perChunk * job.ne0); // even (rowsPerChunk)
    }
    const outBuffer = this.outBuffer;
    this.tag = (this.tag + 1) & TAG_MASK;
    const m: SynthJobMessage = { tag: this.tag, job, nChunks, states, out: outBuffer };
    Atomics.store(ctrl, SYNTH_CTRL.completed, 0);
    Atomics.store(ctrl, SYNTH_CTRL.errorWorker, 0);
    Atomics.store(ctrl, SYNTH_CTRL.claim, this.tag << SYNTH_CLAIM_INDEX_BITS);
    for (const w of this.workers) w.postMessage(m);

    let ownError: unknown;
    const report = () => onRows?.(Math.min(job.rows, Atomics.load(ctrl, SYNTH_CTRL.completed) * perChunk));
    try {
      runSynthChunks(ctrl, m, this.quantizer!, (e) => { ownError ??= e; }, report);
      for (;;) {
        const completed = Atomics.load(ctrl, SYNTH_CTRL.completed);
        if (completed === nChunks) break;
        if (Atomics.wait(ctrl, SYNTH_CTRL.completed, completed, WAIT_SLICE_MS) === "timed-out") {
          this.checkAlive();
          report();
        }
      }
    } finally {
      Atomics.store(ctrl, SYNTH_CTRL.claim, SYNTH_CLAIM_CLOSED);
    }
    if (ownError !== undefined) throw ownError;
    const failed = Atomics.load(ctrl, SYNTH_CTRL.errorWorker);
    if (failed !== 0) throw new SynthThreadError(`synth worker ${failed - 1}: ${this.errorMessage()}`);
    onRows?.(job.rows);
    const bytes = new Uint8Array(outBuffer, 0, nBytes);
    return this.reuseOutput ? bytes : bytes.slice();
  }

  private startWorkers(): void {
    if (this.ctrl) return;
    const nWorkers = this.nThreads - 1;
    const ctrlBuffer = new SharedArrayBuffer((SYNTH_CTRL.workerState + nWorkers) * 4);
    const errorBuffer = new SharedArrayBuffer(SYNTH_ERROR_BYTES);
    this.ctrl = new Int32Array(ctrlBuffer);
    this.errorText = new Uint8Array(errorBuffer);
    this.ctrl[SYNTH_CTRL.claim] = SYNTH_CLAIM_CLOSED;
    for (let w = 0; w < nWorkers; w++) {
      const data: SynthWorkerData = { kind: "kvsplit-synth-worker", ctrl: ctrlBuffer, errorText: errorBuffer, workerIndex: w };
      const worker = new Worker(new URL("./synth-worker.js", import.meta.url), { workerData: data });
      worker.unref();
      // Failures are reported through the state slot; listening keeps an 'error' event from becoming uncaught.
      worker.on("error", () => {});
      this.workers.push(worker);
    }
  }

  /** Throws (and marks the threads unusable) if a worker has exited or failed. */
  private checkAlive(): void {
    const ctrl = this.ctrl!;
    for (let w = 0; w < this.workers.length; w++) {
      const state = Atomics.load(ctrl, SYNTH_CTRL.workerState + w);
      if (state === SynthWorkerState.exited || state === SynthWorkerState.failed) {
        const why = state === SynthWorkerState.failed ? this.errorMessage() : "exited";
        this.broken = `synth worker ${w} is gone (${why})`;
        throw new SynthThreadError(this.broken);
      }
    }
  }

  private errorMessage(): string {
    const n = Math.min(SYNTH_ERROR_BYTES, Atomics.load(this.ctrl!, SYNTH_CTRL.errorLength));
    return new TextDecoder().decode(this.errorText!.slice(0, n));
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const w of this.workers) void w.terminate();
    this.workers = [];
  }
}
