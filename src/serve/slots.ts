/**
 * The server's slots: one session (its own KV cache of `contextSize` tokens) per parallel request, a FIFO queue for
 * requests that find every slot busy (at most `queueLimit`, then HTTP 503 as ollama does), and prompt caching: a
 * request goes to the free slot whose cached tokens share the longest prefix with its prompt, and only the rest of
 * the prompt is evaluated (timings.cache_n). Slots run concurrently in one BatchScheduler: each step is one forward
 * pass over every working slot's next token and new prompts' chunks (continuous batching).
 */
import type { KvPair } from "../api.js";
import type { ExactFormatName } from "../formats/types.js";
import type { Model } from "../model/model.js";
import type { Session } from "../model/session.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { Generation, type StreamOptions, type StreamPiece, type StreamResult } from "../model/stream.js";
import { BatchScheduler } from "./scheduler.js";
import { RequestError } from "./openai.js";

export interface SlotPoolOptions {
  /** Context of each slot, in tokens. */
  contextSize: number;
  kv: KvPair | readonly KvPair[];
  rotation?: boolean;
  kvWindow?: number;
  kvSinks?: number;
  kvExactFormat?: ExactFormatName;
  /** Slots: a number, or as many as fit in this many bytes of KV cache (at least one must). */
  parallel: number | { memoryBytes: number };
  /** Requests waiting for a slot at most (default 512). */
  queueLimit?: number;
  /** Shift a slot's context when it fills, keeping this many first tokens; undefined: stop with finish_reason "length". */
  contextShiftKeep?: number;
}

export class Slot {
  busy = false;
  /** Requests this slot has served. */
  served = 0;

  constructor(
    readonly id: number,
    readonly session: Session,
  ) {}

  erase(): void {
    this.session.reset();
  }
}

export interface SlotRun {
  stream: AsyncIterable<StreamPiece>;
  /** Prompt tokens found in the slot's cache (not evaluated). */
  cacheN: number;
  result(): StreamResult | undefined;
}

export class SlotPool {
  readonly slots: Slot[] = [];
  readonly contextSize: number;
  private readonly queueLimit: number;
  private readonly contextShiftKeep: number | undefined;
  private readonly tokenizer: Tokenizer;
  /** Runs every slot's work in shared forward passes. */
  readonly scheduler: BatchScheduler;
  private readonly waiting: Array<{ prompt: readonly number[]; resolve: (slot: Slot) => void; reject: (e: Error) => void; signal?: AbortSignal }> = [];

  constructor(model: Model, opts: SlotPoolOptions) {
    this.contextSize = opts.contextSize;
    this.queueLimit = opts.queueLimit ?? 512;
    this.contextShiftKeep = opts.contextShiftKeep;
    this.tokenizer = model.tokenizer;
    this.scheduler = new BatchScheduler(model);
    const create = () =>
      model.createSession({ contextSize: opts.contextSize, kv: opts.kv, rotation: opts.rotation, kvWindow: opts.kvWindow, kvSinks: opts.kvSinks, kvExactFormat: opts.kvExactFormat });
    const first = create();
    let count: number;
    if (typeof opts.parallel === "number") count = opts.parallel;
    else {
      count = Math.floor(opts.parallel.memoryBytes / first.kvBytes);
      if (count < 1) {
        first.dispose();
        throw new RangeError(`one slot's KV cache (${first.kvBytes} bytes for ${opts.contextSize} tokens) is more than --memory (${opts.parallel.memoryBytes} bytes); lower -c or choose a smaller K/V config`);
      }
    }
    if (!Number.isInteger(count) || count < 1) throw new RangeError(`parallel slots: ${count}; allowed: an integer >= 1`);
    this.slots.push(new Slot(0, first));
    try {
      for (let i = 1; i < count; i++) this.slots.push(new Slot(i, create()));
    } catch (e) {
      this.dispose();
      throw e;
    }
  }

  /** KV bytes of one slot. */
  get slotKvBytes(): number {
    return this.slots[0]!.session.kvBytes;
  }

  get queued(): number {
    return this.waiting.length;
  }

  get busyCount(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  /** A free slot for this prompt (the longest cached prefix), waiting in the queue when all are busy. */
  acquire(prompt: readonly number[], signal?: AbortSignal): Promise<Slot> {
    const free = this.bestFree(prompt);
    if (free) {
      free.busy = true;
      return Promise.resolve(free);
    }
    if (this.waiting.length >= this.queueLimit) {
      return Promise.reject(new RequestError(503, `the server is busy: all ${this.slots.length} slots are working and ${this.waiting.length} requests wait; try again later`));
    }
    return new Promise((resolve, reject) => {
      const entry = { prompt, resolve, reject, signal };
      this.waiting.push(entry);
      signal?.addEventListener("abort", () => {
        const at = this.waiting.indexOf(entry);
        if (at >= 0) {
          this.waiting.splice(at, 1);
          reject(new RequestError(499, "the client went away while the request waited for a slot"));
        }
      });
    });
  }

  release(slot: Slot): void {
    slot.busy = false;
    slot.served++;
    const next = this.waiting.shift();
    if (next) {
      slot.busy = true;
      next.resolve(slot);
    }
  }

  private bestFree(prompt: readonly number[]): Slot | undefined {
    let best: Slot | undefined;
    let bestShared = -1;
    for (const s of this.slots) {
      if (s.busy) continue;
      const shared = s.session.sharedPrefix(prompt);
      if (shared > bestShared) {
        best = s;
        bestShared = shared;
      }
    }
    return best;
  }

  /**
   * Generate on a slot the caller holds: keep the cached prefix of `prompt` (at least one token is evaluated, for the
   * first logits), evaluate the rest, stream the answer.
   */
  run(slot: Slot, prompt: readonly number[], opts: Pick<StreamOptions, "maxTokens" | "sampler" | "stop" | "logprobs" | "signal">): SlotRun {
    if (prompt.length > this.contextSize) {
      throw new RequestError(400, `the prompt has ${prompt.length} tokens, more than a slot's context (${this.contextSize}); shorten it or start the server with a larger -c`, "messages");
    }
    const { kept: keep } = slot.session.keepPrefix(prompt);
    const gen = new Generation(this.tokenizer, opts, prompt);
    let finished: StreamResult | undefined;
    const stream = this.scheduler.submit(slot, prompt.slice(keep), {
      gen,
      contextShiftKeep: this.contextShiftKeep,
      signal: opts.signal,
      onDone: (r) => {
        finished = r;
      },
    });
    return { stream, cacheN: keep, result: () => finished };
  }

  dispose(): void {
    for (const w of this.waiting.splice(0)) w.reject(new RequestError(503, "the server is shutting down"));
    for (const s of this.slots) s.session.dispose();
  }
}
