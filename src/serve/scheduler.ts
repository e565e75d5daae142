/**
 * Continuous batching: one loop runs every active slot's work as one forward pass per step (model/batch.ts): the
 * next token of each generating slot plus prompt chunks of new requests, up to the pass's token budget. Each slot's
 * generation rules (sampling, stop strings, limits) are its own Generation; its output does not depend on what else
 * is in the batch, because the batched kernels give every token the bits it gets alone. Between steps the loop yields
 * to the event loop, so requests arrive, pieces are written and disconnects are seen within one step.
 */
import { evalBatchInPlace, type BatchStep } from "../model/batch.js";
import { shiftWhenFull } from "../model/generate.js";
import type { Model } from "../model/model.js";
import type { Generation, StreamPiece, StreamResult } from "../model/stream.js";
import type { Slot } from "./slots.js";

/** A one-reader queue of pieces: the scheduler pushes, the HTTP handler iterates. */
class PieceQueue implements AsyncIterable<StreamPiece> {
  private readonly items: StreamPiece[] = [];
  private waiting: (() => void) | undefined;
  private ended = false;
  private failure: Error | undefined;

  push(piece: StreamPiece): void {
    this.items.push(piece);
    this.wake();
  }

  end(error?: Error): void {
    this.ended = true;
    this.failure = error;
    this.wake();
  }

  private wake(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<StreamPiece> {
    while (true) {
      const item = this.items.shift();
      if (item) {
        yield item;
        continue;
      }
      if (this.ended) {
        if (this.failure) throw this.failure;
        return;
      }
      await new Promise<void>((resolve) => (this.waiting = resolve));
    }
  }
}

interface Job {
  slot: Slot;
  /** Prompt tokens not evaluated yet. */
  prompt: number[];
  promptTokens: number;
  promptEvaluated: number;
  gen: Generation;
  /** The token to evaluate next (generating), or undefined while the prompt runs. */
  next: number | undefined;
  signal: AbortSignal | undefined;
  queue: PieceQueue;
  promptStart: number;
  promptMs: number;
  genStart: number;
  genEvals: number;
  shifts: number;
  contextShiftKeep: number | undefined;
  onDone: (result: StreamResult | undefined) => void;
}

export interface SubmitOptions {
  gen: Generation;
  /** Shift the slot's context when it fills, keeping this many first tokens (see StreamOptions). */
  contextShiftKeep?: number;
  signal?: AbortSignal;
  /** Called once when the job ends, with its result (undefined when it failed). */
  onDone: (result: StreamResult | undefined) => void;
}

export class BatchScheduler {
  private readonly jobs: Job[] = [];
  private running = false;
  /** Forward passes run, and tokens in them (for /metrics and tests). */
  steps = 0;
  batchedTokens = 0;
  /** The most slots that shared one pass. */
  widestStep = 0;

  constructor(
    private readonly model: Model,
    /** Prompt tokens one request may put into a pass (others' next tokens come first). */
    private readonly promptChunk = 256,
  ) {}

  /** Evaluate `prompt` on the slot (its cache already holds what precedes it), then generate; pieces stream out. */
  submit(slot: Slot, prompt: readonly number[], opts: SubmitOptions): AsyncIterable<StreamPiece> {
    const queue = new PieceQueue();
    this.jobs.push({
      slot, prompt: [...prompt], promptTokens: prompt.length, promptEvaluated: 0, gen: opts.gen, next: undefined, signal: opts.signal, queue,
      promptStart: performance.now(), promptMs: 0, genStart: 0, genEvals: 0, shifts: 0, contextShiftKeep: opts.contextShiftKeep, onDone: opts.onDone,
    });
    if (!this.running) {
      this.running = true;
      // a timer, not setImmediate: requests that reach an idle server together (a client's parallel streams) are all
      // submitted before the first pass, so they start and end in the same steps
      setTimeout(() => void this.loop(), 0);
    }
    return queue;
  }

  get active(): number {
    return this.jobs.length;
  }

  private async loop(): Promise<void> {
    try {
      while (this.jobs.length > 0) {
        this.step();
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
    } finally {
      this.running = false;
    }
  }

  /** One forward pass over every job's next tokens. */
  private step(): void {
    for (const job of [...this.jobs]) {
      if (job.signal?.aborted) {
        job.gen.stop("aborted");
        this.finish(job);
      }
    }
    if (this.jobs.length === 0) return;
    // at most a pass's worth of next tokens; the jobs that ran go to the back of the line (below)
    const generating = this.jobs.filter((j) => j.next !== undefined).slice(0, this.model.batchSize);
    let budget = this.model.batchSize - generating.length;
    const planned: { job: Job; tokens: number[] }[] = generating.map((job) => ({ job, tokens: [job.next!] }));
    for (const job of this.jobs) {
      if (job.next !== undefined || budget <= 0) continue;
      const n = Math.min(job.prompt.length, this.promptChunk, budget);
      planned.push({ job, tokens: job.prompt.slice(0, n) });
      budget -= n;
    }
    let logits: Float32Array[];
    try {
      // views valid until the next pass: every job samples from its row below, before anything else runs
      logits = evalBatchInPlace(this.model, planned.map((p): BatchStep => ({ session: p.job.slot.session, tokens: p.tokens })));
    } catch (e) {
      for (const p of planned) this.finish(p.job, e as Error);
      return;
    }
    for (const p of planned) {
      const at = this.jobs.indexOf(p.job);
      this.jobs.splice(at, 1);
      this.jobs.push(p.job);
    }
    this.steps++;
    this.batchedTokens += planned.reduce((n, p) => n + p.tokens.length, 0);
    this.widestStep = Math.max(this.widestStep, planned.length);
    planned.forEach(({ job, tokens }, i) => {
      if (job.next !== undefined) job.genEvals++;
      else {
        job.prompt.splice(0, tokens.length);
        job.promptEvaluated += tokens.length;
        if (job.prompt.length > 0) return; // more prompt next step
        job.promptMs = performance.now() - job.promptStart;
        job.genStart = performance.now();
      }
      const session = job.slot.session;
      if (shiftWhenFull(session, job.contextShiftKeep)) job.shifts++;
      const { piece, next } = job.gen.step(logits[i]!, session.position >= session.contextSize);
      if (piece) job.queue.push(piece);
      job.next = next;
      if (next === undefined) this.finish(job);
    });
  }

  private finish(job: Job, error?: Error): void {
    const at = this.jobs.indexOf(job);
    if (at < 0) return;
    this.jobs.splice(at, 1);
    if (error) {
      job.onDone(undefined);
      job.queue.end(error);
      return;
    }
    const last = job.gen.flush();
    if (last) job.queue.push(last);
    const now = performance.now();
    if (job.genStart === 0) job.promptMs = now - job.promptStart;
    job.onDone({
      tokens: job.gen.tokens, text: job.gen.text, stopReason: job.gen.stopReason ?? "aborted", promptTokens: job.promptTokens,
      promptEvaluated: job.promptEvaluated, promptMs: job.promptMs, genEvals: job.genEvals, genMs: job.genStart === 0 ? 0 : now - job.genStart, shifts: job.shifts,
    });
    job.queue.end();
  }
}
