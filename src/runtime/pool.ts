/**
 * A fixed pool of threads that run WebAssembly kernels on shared memories: the calling thread plus nThreads − 1
 * worker_threads, each with its own instance of the same kernel module (wasm.ts: kernels.wasm or kernels-relaxed.wasm,
 * compiled once and posted to the workers) over EACH of the pool's WebAssembly.Memory objects (the shards of
 * src/runtime/shards.ts; one memory holds at most 4 GiB). A task names the shard whose memory its byte
 * offsets point into; kernel index i of shard s is s × (kernels per module) + i on every thread.
 *
 * Handoff (a futex sync costs 15–70 µs on the target machine, so there is one per run(), not per kernel):
 *   caller: write the task list into a SharedArrayBuffer, open the claim word, bump `generation`, Atomics.notify;
 *   every thread (the caller too): claim chunks with a compare-exchange on the claim word and run them;
 *   caller: when no chunk is left, bounded spin then timed Atomics.wait until every claimed chunk is completed.
 * Each task is cut into chunks of whole grains (CHUNKS_PER_THREAD per thread): one big chunk per thread first, then
 * small ones that even out the end (chunkBound); chunks go to whichever thread claims them first, so a worker the OS
 * has not scheduled yet never stalls the caller (it does the chunks itself).
 * Every item is computed by exactly one thread with the same kernel on a grain-aligned range: results do not depend
 * on the thread count nor on which thread ran which chunk.
 *
 * Failures: a kernel that traps in a worker is caught there, its message copied into shared memory, and run() throws
 * it in the calling thread (after every claimed chunk has finished; the pool stays usable). A worker that dies is
 * noticed through its state slot during the timed waits, and makes run() (and every later run()) throw, not hang.
 *
 * Lifetime: workers are unref'd (they never keep the process alive). dispose() tells them to exit and terminates
 * them. A pool dropped without dispose() is collected by a FinalizationRegistry that does the same for its workers
 * (they hold no reference to the pool; until the registry runs they sit blocked in Atomics.wait, using no CPU).
 */
import { startPoolThread, THREADS_START_WHILE_BLOCKED, type PoolThread } from "./threads.js";
import { kernelModule } from "./wasm.js";

/** A per-thread scratch argument: args[index] = base + threadIndex × stride. */
export interface ThreadArg {
  index: number;
  base: number;
  stride: number;
}

export interface ParallelTask {
  /** A WebAssembly export name. */
  kernel: string;
  /** Its arguments (at most MAX_TASK_ARGS). */
  args: number[];
  /** Items to divide among threads (rows, heads, ...). */
  count: number;
  /** Index in args replaced by the thread's first item. */
  startArg: number;
  /** Index in args replaced by the thread's end item (exclusive). */
  endArg: number;
  /** Split boundaries are multiples of this (default 1). */
  grain?: number;
  /** The memory (index into the pool's memories) the args point into (default 0). */
  shard?: number;
  /** args[index] = base + threadIndex * stride (per-thread scratch). */
  threadArg?: ThreadArg;
}

// ---- The control block: shared by pool.ts and worker.ts; the layout lives here only. ----
/** Int32 slots of the header. */
export const CTRL = {
  generation: 0, // bumped by the caller for every run (and for exit): what sleeping workers wait on
  claim: 1, // (runTag << CLAIM_INDEX_BITS) | next unclaimed chunk, or CLAIM_CLOSED while the task list is rewritten
  completed: 2, // chunks finished in the current run
  nTasks: 3,
  nChunks: 4, // chunks in the current run, all tasks together
  exit: 5, // 1: workers leave their loop
  errorWorker: 6, // 0: no error in this run; else 1 + index of the first worker that failed
  errorLength: 7, // bytes of its UTF-8 message in the error buffer
  workerState: 8, // + worker index: WorkerState
} as const;
export const WorkerState = { starting: 0, ready: 1, exited: 2, failed: 3 } as const;
export const CLAIM_INDEX_BITS = 12;
export const CLAIM_CLOSED = -1;
/** Tags cycle through 2^19 values: a stale claim could only succeed after a thread stalls for that many runs. */
const CLAIM_TAG_MASK = (1 << (31 - CLAIM_INDEX_BITS)) - 1;
export const MAX_WORKERS = 255;
export const MAX_TASKS = 32;
export const MAX_TASK_ARGS = 16;
/** Chunks each task is cut into, per thread: small enough to balance, large enough that claims cost nothing. */
export const CHUNKS_PER_THREAD = 4;
/**
 * Share of a task's grains in its first nThreads chunks (one big chunk per thread, claimed as the run starts); the
 * others split the rest, so the last chunks of a run are small and the threads finish together. Against 8 even chunks
 * on two threads (TinyLlama q8_0, alternating 10-step blocks of two models in one process, medians of 24 pairs): a
 * 4-token step 0.933×, a 1-token step 0.894× the time; 7/8 was 1.08×, 5/8 and 12 chunks the same as 3/4.
 */
export const BIG_CHUNKS_SHARE = 3 / 4;
/** At most this many chunks per task: MAX_TASKS × MAX_TASK_CHUNKS must stay below 2^CLAIM_INDEX_BITS. */
export const MAX_TASK_CHUNKS = 120;
/** Int32 slots per task, after the header. */
export const TASK_INTS = 10;
export const TASK = {
  kernel: 0, nArgs: 1, count: 2, startArg: 3, endArg: 4, grain: 5, threadArgIndex: 6, firstChunk: 7, nChunks: 8, bigChunks: 9,
} as const;
export const HEADER_INTS = CTRL.workerState + MAX_WORKERS;
/** Float64 slots per task: the args, then threadArg base and stride. */
export const TASK_F64S = MAX_TASK_ARGS + 2;
export const ERROR_BYTES = 4096;

/** What a worker receives as workerData. */
export interface PoolWorkerData {
  kind: "kvsplit-pool-worker";
  module: WebAssembly.Module;
  memories: WebAssembly.Memory[]; // one kernel instance per memory, in shard order
  ints: SharedArrayBuffer; // Int32 (HEADER_INTS + MAX_TASKS * TASK_INTS)
  f64s: SharedArrayBuffer; // Float64 (MAX_TASKS * TASK_F64S)
  errorText: SharedArrayBuffer; // u8 (ERROR_BYTES)
  workerIndex: number; // 0-based; the worker is thread workerIndex + 1
  nThreads: number;
}

/** Function exports of the module in declaration order: kernel index i on every thread names the same function. */
export function kernelIndexNames(module: WebAssembly.Module): string[] {
  return WebAssembly.Module.exports(module)
    .filter((e) => e.kind === "function")
    .map((e) => e.name);
}

/**
 * The kernel functions of one instance per memory, concatenated in shard order: (memories.length × names.length),
 * what a task's kernel index (shard × names.length + i) selects on every thread.
 */
export function shardKernelTable(module: WebAssembly.Module, memories: readonly WebAssembly.Memory[], abort: () => never): Array<(...args: number[]) => unknown> {
  const names = kernelIndexNames(module);
  const fns: Array<(...args: number[]) => unknown> = [];
  for (const memory of memories) {
    const exports = new WebAssembly.Instance(module, { env: { memory, abort } }).exports as Record<string, (...args: number[]) => unknown>;
    for (const n of names) fns.push(exports[n]);
  }
  return fns;
}

/** First item of thread `t` of `nThreads` (bound(nThreads) = count): whole grains, split as evenly as grains allow. */
export function splitBound(count: number, grain: number, t: number, nThreads: number): number {
  if (t >= nThreads) return count;
  const units = Math.ceil(count / grain);
  return Math.min(count, Math.floor((units * t) / nThreads) * grain);
}

/**
 * First item of chunk c of a task cut into nChunks (chunkBound(nChunks) = count), in whole grains: the first
 * bigChunks chunks share BIG_CHUNKS_SHARE of the grains evenly, the others the rest; bigChunks 0: even chunks
 * (splitBound). Chunks may be empty where there are fewer small grains than small chunks.
 */
export function chunkBound(count: number, grain: number, c: number, nChunks: number, bigChunks: number): number {
  if (bigChunks === 0 || nChunks <= bigChunks) return splitBound(count, grain, c, nChunks);
  const units = Math.ceil(count / grain);
  const bigUnits = Math.floor(units * BIG_CHUNKS_SHARE);
  const at = c <= bigChunks ? Math.floor((bigUnits * c) / bigChunks) : bigUnits + Math.floor(((units - bigUnits) * (c - bigChunks)) / (nChunks - bigChunks));
  return Math.min(count, at * grain);
}

/**
 * Claim and run chunks of the current run until none is left (called by the caller and by every worker, so all
 * split identically). A chunk whose kernel throws is reported to `onError` BEFORE it counts as completed (so the
 * caller sees the report once the run is complete), and claiming goes on, so the run always finishes.
 */
export function runChunks(
  fns: ReadonlyArray<(...args: number[]) => unknown>,
  ints: Int32Array,
  f64s: Float64Array,
  thread: number,
  a: Float64Array, // scratch (MAX_TASK_ARGS)
  onError: (e: unknown) => void,
): void {
  for (;;) {
    const claim = Atomics.load(ints, CTRL.claim);
    if (claim === CLAIM_CLOSED) return;
    const chunk = claim & ((1 << CLAIM_INDEX_BITS) - 1);
    // nChunks is stable while this claim word is current: the list is only rewritten after the word is closed,
    // and a stale read here makes the compare-exchange below fail.
    if (chunk >= Atomics.load(ints, CTRL.nChunks)) return;
    if (Atomics.compareExchange(ints, CTRL.claim, claim, claim + 1) !== claim) continue;
    try {
      runChunk(fns, ints, f64s, chunk, thread, a);
    } catch (e) {
      onError(e);
    }
    if (Atomics.add(ints, CTRL.completed, 1) + 1 === Atomics.load(ints, CTRL.nChunks)) Atomics.notify(ints, CTRL.completed);
  }
}

/** Chunk `chunk` (numbered across all tasks) on thread `thread`. */
function runChunk(fns: ReadonlyArray<(...args: number[]) => unknown>, ints: Int32Array, f64s: Float64Array, chunk: number, thread: number, a: Float64Array): void {
  let ti = HEADER_INTS;
  let tf = 0;
  while (chunk >= ints[ti + TASK.firstChunk] + ints[ti + TASK.nChunks]) {
    ti += TASK_INTS;
    tf += TASK_F64S;
  }
  const count = ints[ti + TASK.count];
  const grain = ints[ti + TASK.grain];
  const nChunks = ints[ti + TASK.nChunks];
  const bigChunks = ints[ti + TASK.bigChunks];
  const c = chunk - ints[ti + TASK.firstChunk];
  const start = chunkBound(count, grain, c, nChunks, bigChunks);
  const end = chunkBound(count, grain, c + 1, nChunks, bigChunks);
  if (start >= end) return;
  const nArgs = ints[ti + TASK.nArgs];
  for (let j = 0; j < nArgs; j++) a[j] = f64s[tf + j];
  a[ints[ti + TASK.startArg]] = start;
  a[ints[ti + TASK.endArg]] = end;
  const threadArgIndex = ints[ti + TASK.threadArgIndex];
  if (threadArgIndex >= 0) a[threadArgIndex] = f64s[tf + MAX_TASK_ARGS] + thread * f64s[tf + MAX_TASK_ARGS + 1];
  // Extra arguments are ignored by WebAssembly functions: one call shape, no per-call array.
  fns[ints[ti + TASK.kernel]](a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15]);
}

/**
 * Spin iterations before a futex wait (about 0.5 ms at 5.5 ns an Atomics.load, Node 24): longer than the gaps between
 * a batched step's runs (the caller's norms, rope and quantization of a few tokens), so a worker is rarely asleep when
 * a run starts (waking it cost the caller ~20 µs in Atomics.notify, and the worker its share until it ran) nor the
 * caller when the last chunk ends. Idle threads spin this long once, then sleep.
 */
export const SPIN_LOOPS = 100000;
/** Timed waits let the caller notice a dead worker instead of hanging. */
const WAIT_SLICE_MS = 50;
/** A worker that has not started after this long is reported as failed. */
const STARTUP_LIMIT_MS = 60000;

export class ThreadPoolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ThreadPoolError";
  }
}

interface WorkerHandles {
  workers: PoolThread[];
  ints: Int32Array;
}

/** Tell workers to leave their loop, then terminate them (also used by the finalizer: no reference to the pool). */
function stopWorkers(h: WorkerHandles): void {
  Atomics.store(h.ints, CTRL.exit, 1);
  Atomics.add(h.ints, CTRL.generation, 1);
  Atomics.notify(h.ints, CTRL.generation);
  for (const w of h.workers) w.terminate();
}

const finalizer = new FinalizationRegistry<WorkerHandles>(stopWorkers);

export class ThreadPool {
  readonly nThreads: number;
  private workers: PoolThread[] = [];
  /** Workers were started but not yet seen ready (a browser: the creator must return to its event loop first). */
  private starting = false;
  private ints!: Int32Array; // (HEADER_INTS + MAX_TASKS * TASK_INTS)
  private f64s!: Float64Array; // (MAX_TASKS * TASK_F64S)
  private errorText!: Uint8Array; // (ERROR_BYTES) UTF-8 message of a worker's failure
  private readonly module: WebAssembly.Module;
  private readonly memories: WebAssembly.Memory[];
  private readonly kernelIndex = new Map<string, number>();
  private readonly kernelsPerShard: number;
  private fns: Array<(...args: number[]) => unknown>;
  private readonly argScratch = new Float64Array(MAX_TASK_ARGS);
  /** What the finalizer stops: the current workers and control block (updated in place when workers are replaced). */
  private readonly handles: WorkerHandles = { workers: [], ints: new Int32Array(1) };
  private readonly exits: Promise<void>[] = [];
  private broken: string | undefined;
  private runTag = 0;
  /** The tasks held back by runTogether while its function runs. */
  private queued: ParallelTask[] | undefined;
  /** The first error of the calling thread's own chunks in the current run. */
  private ownError: unknown;
  private readonly onOwnError = (e: unknown): void => {
    this.ownError ??= e ?? new Error("a kernel threw a nullish value");
  };
  private disposed = false;

  /**
   * nThreads − 1 worker_threads + the calling thread, over one memory or several (shard 0, 1, ...), all instantiating
   * `module` (give the WasmRuntime's module when it is not the default). Blocks until every worker is ready (or throws).
   */
  constructor(memories: WebAssembly.Memory | readonly WebAssembly.Memory[], nThreads: number, module: WebAssembly.Module = kernelModule()) {
    if (!Number.isInteger(nThreads) || nThreads < 1 || nThreads > MAX_WORKERS + 1) {
      throw new RangeError(`threads must be an integer in [1, ${MAX_WORKERS + 1}], got ${nThreads}`);
    }
    this.memories = Array.isArray(memories) ? [...memories] : [memories as WebAssembly.Memory];
    // One thread may run on an unshared memory (a web page without cross-origin isolation has no shared memory).
    for (const memory of this.memories) {
      if (nThreads > 1 && !(memory.buffer instanceof SharedArrayBuffer)) throw new TypeError("ThreadPool needs a shared WebAssembly.Memory for more than one thread");
    }
    this.nThreads = nThreads;
    this.module = module;
    const names = kernelIndexNames(this.module);
    this.kernelsPerShard = names.length;
    for (let i = 0; i < names.length; i++) this.kernelIndex.set(names[i], i);
    this.fns = shardKernelTable(this.module, this.memories, kernelAbort);
    this.startWorkers();
  }

  /** Shards (memories) the pool runs kernels on. */
  get nShards(): number {
    return this.memories.length;
  }

  /** Resolves when every worker thread ever started has exited (after dispose(), or at once for a one-thread pool). */
  get exited(): Promise<void> {
    return Promise.all(this.exits).then(() => {});
  }

  /**
   * Add a memory (returns its shard index). Workers cannot take a new memory while they wait on the control block
   * (a browser worker has no synchronous message receive), so they are replaced by new ones that instantiate the
   * kernels over every memory: tens of milliseconds, paid only when a session needs a new shard.
   */
  addMemory(memory: WebAssembly.Memory): number {
    if (this.disposed) throw new ThreadPoolError("the thread pool has been disposed");
    if (this.nThreads > 1 && !(memory.buffer instanceof SharedArrayBuffer)) throw new TypeError("ThreadPool needs a shared WebAssembly.Memory for more than one thread");
    this.memories.push(memory);
    this.fns = this.fns.concat(shardKernelTable(this.module, [memory], kernelAbort));
    if (this.workers.length > 0) {
      finalizer.unregister(this);
      stopWorkers(this.handles);
    }
    this.startWorkers();
    return this.memories.length - 1;
  }

  /** A fresh control block and nThreads − 1 workers over every memory. */
  private startWorkers(): void {
    // shared with the workers; a one-thread pool has none (and a page without cross-origin isolation no SharedArrayBuffer)
    const Backing = this.nThreads > 1 ? SharedArrayBuffer : ArrayBuffer;
    const intsBuf = new Backing((HEADER_INTS + MAX_TASKS * TASK_INTS) * 4) as SharedArrayBuffer;
    const f64sBuf = new Backing(MAX_TASKS * TASK_F64S * 8) as SharedArrayBuffer;
    const errorBuf = new Backing(ERROR_BYTES) as SharedArrayBuffer;
    this.ints = new Int32Array(intsBuf);
    this.f64s = new Float64Array(f64sBuf);
    this.errorText = new Uint8Array(errorBuf);
    this.ints[CTRL.claim] = CLAIM_CLOSED;

    const { module, memories, nThreads } = this;
    this.workers = [];
    for (let w = 0; w < nThreads - 1; w++) {
      this.workers.push(startPoolThread({
        kind: "kvsplit-pool-worker", module, memories, ints: intsBuf, f64s: f64sBuf, errorText: errorBuf, workerIndex: w, nThreads,
      }));
    }
    this.exits.push(Promise.all(this.workers.map((w) => w.exited)).then(() => {}));
    this.handles.workers = this.workers;
    this.handles.ints = this.ints;
    if (this.workers.length > 0) {
      finalizer.register(this, this.handles, this);
      this.starting = true;
      if (THREADS_START_WHILE_BLOCKED) this.settleStart();
    }
  }

  /** Wait (blocking) for started workers to be ready; disposes the pool and throws if one failed or never started. */
  private settleStart(): void {
    if (!this.starting) return;
    try {
      this.waitReady();
      this.starting = false;
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /**
   * Resolves when every worker is ready (at once where workers start on their own, as in Node). A browser starts a
   * worker only after its creator returns to the event loop: there, await this after creating the pool, a model or
   * a session (a new shard restarts the workers) and before the first computation.
   */
  async ready(): Promise<void> {
    const startedAt = performance.now();
    while (this.starting && !this.disposed) {
      let pending = false;
      for (let w = 0; w < this.workers.length; w++) {
        const state = Atomics.load(this.ints, CTRL.workerState + w);
        if (state === WorkerState.starting) pending = true;
      }
      if (!pending || performance.now() - startedAt > STARTUP_LIMIT_MS) break;
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    this.settleStart();
  }

  /**
   * Run every task, each split across all threads (the caller does a share too); returns when all are done.
   * Tasks within one run() must be independent of each other (no barrier between them).
   * Throws ThreadPoolError if a kernel failed on any thread or a worker died.
   */
  run(tasks: readonly ParallelTask[]): void {
    if (this.queued) {
      this.queued.push(...tasks);
      return;
    }
    if (this.disposed) throw new ThreadPoolError("the thread pool has been disposed");
    if (this.broken) throw new ThreadPoolError(this.broken);
    this.settleStart();
    for (let start = 0; start < tasks.length; start += MAX_TASKS) {
      this.runBatch(tasks, start, Math.min(tasks.length, start + MAX_TASKS));
    }
  }

  /**
   * Call fn, holding back the runs it asks for, then run all their tasks as one run (several when they do not fit one
   * control block): one sync instead of one per call, e.g. every sequence's K/V stores of a layer. The tasks must be
   * independent of each other and stay unchanged until this returns (the callers inside make fresh ones), and fn must
   * not read what they write (they run after it returns). Nested calls join the outer one.
   */
  runTogether(fn: () => void): void {
    if (this.queued) {
      fn();
      return;
    }
    const tasks: ParallelTask[] = [];
    this.queued = tasks;
    try {
      fn();
    } finally {
      this.queued = undefined;
    }
    if (tasks.length > 0) this.run(tasks);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (this.workers.length === 0) return;
    finalizer.unregister(this);
    stopWorkers(this.handles);
  }

  private runBatch(tasks: readonly ParallelTask[], from: number, to: number): void {
    const ints = this.ints;
    // The claim word is closed here (constructor, or the end of the previous run): no thread reads the list.
    const nTasks = to - from;
    let nChunks = 0;
    for (let i = 0; i < nTasks; i++) nChunks += this.writeTask(i, tasks[from + i], nChunks);
    ints[CTRL.nTasks] = nTasks;
    Atomics.store(ints, CTRL.nChunks, nChunks);
    Atomics.store(ints, CTRL.completed, 0);
    Atomics.store(ints, CTRL.errorWorker, 0);
    this.runTag = (this.runTag + 1) & CLAIM_TAG_MASK;
    Atomics.store(ints, CTRL.claim, this.runTag << CLAIM_INDEX_BITS); // publishes the list (seq-cst after plain writes)
    if (this.workers.length > 0) {
      Atomics.add(ints, CTRL.generation, 1);
      Atomics.notify(ints, CTRL.generation);
    }
    this.ownError = undefined;
    runChunks(this.fns, ints, this.f64s, 0, this.argScratch, this.onOwnError);
    const ownError = this.ownError;
    try {
      this.waitCompleted(nChunks);
    } finally {
      Atomics.store(ints, CTRL.claim, CLAIM_CLOSED);
    }
    if (ownError !== undefined) throw ownError;
    const failed = Atomics.load(ints, CTRL.errorWorker);
    if (failed !== 0) throw new ThreadPoolError(`worker ${failed - 1}: ${this.errorMessage()}`);
  }

  /** Writes task `i` (its chunks numbered from firstChunk); returns its chunk count. */
  private writeTask(i: number, t: ParallelTask, firstChunk: number): number {
    const index = this.kernelIndex.get(t.kernel);
    if (index === undefined) throw new RangeError(`unknown kernel '${t.kernel}': not an export of the kernel module`);
    const shard = t.shard ?? 0;
    if (!Number.isInteger(shard) || shard < 0 || shard >= this.memories.length) {
      throw new RangeError(`${t.kernel}: shard ${shard} is not one of the pool's ${this.memories.length} memories`);
    }
    const kernel = shard * this.kernelsPerShard + index;
    const nArgs = t.args.length;
    if (nArgs > MAX_TASK_ARGS) throw new RangeError(`${t.kernel}: ${nArgs} arguments; a pool task takes at most ${MAX_TASK_ARGS}`);
    const grain = t.grain ?? 1;
    if (!Number.isInteger(grain) || grain < 1) throw new RangeError(`${t.kernel}: grain must be a positive integer, got ${grain}`);
    if (!Number.isInteger(t.count) || t.count < 0 || t.count > 0x7fffffff) {
      throw new RangeError(`${t.kernel}: count must be a non-negative int32, got ${t.count}`);
    }
    for (const [what, index] of [["startArg", t.startArg], ["endArg", t.endArg], ["threadArg.index", t.threadArg?.index ?? 0]] as const) {
      if (!Number.isInteger(index) || index < 0 || index >= nArgs) {
        throw new RangeError(`${t.kernel}: ${what} ${index} is not an index into its ${nArgs} arguments`);
      }
    }
    const units = Math.ceil(t.count / grain);
    const nChunks = this.nThreads === 1 ? 1 : Math.max(1, Math.min(units, this.nThreads * CHUNKS_PER_THREAD, MAX_TASK_CHUNKS));
    const ti = HEADER_INTS + i * TASK_INTS;
    const tf = i * TASK_F64S;
    const ints = this.ints;
    ints[ti + TASK.kernel] = kernel;
    ints[ti + TASK.nArgs] = nArgs;
    ints[ti + TASK.count] = t.count;
    ints[ti + TASK.startArg] = t.startArg;
    ints[ti + TASK.endArg] = t.endArg;
    ints[ti + TASK.grain] = grain;
    ints[ti + TASK.threadArgIndex] = t.threadArg ? t.threadArg.index : -1;
    ints[ti + TASK.firstChunk] = firstChunk;
    ints[ti + TASK.nChunks] = nChunks;
    ints[ti + TASK.bigChunks] = nChunks >= 2 * this.nThreads ? this.nThreads : 0; // big chunks where small ones remain
    for (let j = 0; j < nArgs; j++) this.f64s[tf + j] = t.args[j];
    if (t.threadArg) {
      this.f64s[tf + MAX_TASK_ARGS] = t.threadArg.base;
      this.f64s[tf + MAX_TASK_ARGS + 1] = t.threadArg.stride;
    }
    return nChunks;
  }

  /** Bounded spin, then timed futex waits until every chunk is completed; throws if a worker died. */
  private waitCompleted(nChunks: number): void {
    const ints = this.ints;
    for (let i = 0; i < SPIN_LOOPS; i++) if (Atomics.load(ints, CTRL.completed) === nChunks) return;
    for (;;) {
      const completed = Atomics.load(ints, CTRL.completed);
      if (completed === nChunks) return;
      if (Atomics.wait(ints, CTRL.completed, completed, WAIT_SLICE_MS) === "timed-out") this.checkAlive();
    }
  }

  private waitReady(): void {
    const ints = this.ints;
    const startedAt = performance.now();
    for (let w = 0; w < this.workers.length; w++) {
      const slot = CTRL.workerState + w;
      for (;;) {
        const state = Atomics.load(ints, slot);
        if (state === WorkerState.ready) break;
        if (state !== WorkerState.starting) this.checkAlive();
        if (performance.now() - startedAt > STARTUP_LIMIT_MS) {
          throw new ThreadPoolError(`worker ${w} did not start within ${STARTUP_LIMIT_MS} ms`);
        }
        Atomics.wait(ints, slot, state, WAIT_SLICE_MS);
      }
    }
  }

  /** Throws (and marks the pool unusable) if a worker has exited or failed outside a kernel. */
  private checkAlive(): void {
    for (let w = 0; w < this.workers.length; w++) {
      const state = Atomics.load(this.ints, CTRL.workerState + w);
      if (state === WorkerState.exited || state === WorkerState.failed) {
        const why = state === WorkerState.failed ? this.errorMessage() : "exited";
        this.broken = `worker ${w} is gone (${why}); create a new pool`;
        throw new ThreadPoolError(this.broken);
      }
    }
  }

  private errorMessage(): string {
    const n = Math.min(ERROR_BYTES, Atomics.load(this.ints, CTRL.errorLength));
    // TextDecoder refuses shared buffers: copy first.
    return new TextDecoder().decode(this.errorText.slice(0, n));
  }
}

function kernelAbort(): never {
  throw new Error("WebAssembly kernel aborted");
}
