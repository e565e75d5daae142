/**
 * A session: one conversation's KV cache and scratch over a loaded model.
 * K and V formats are chosen per layer when the session is created; the model never sees them.
 */
import type { KvPair, SessionOptions } from "../api.js";
import { EXACT_FORMAT_NAMES, isExactFormatName, type ExactFormatName } from "../formats/types.js";
import type { KvLayerFormats } from "../kv/cache.js";
import { ShardedKvCache } from "../kv/sharded.js";
import { copyFloats } from "../runtime/wasm.js";
import type { Model } from "./model.js";
import { DEFAULT_KV } from "./defaults.js";
import { forward, ROPE_ROWS_KERNEL, type BatchSequence, type ForwardContext, type LogitsWanted } from "./forward.js";
import { RopeRows, ropeScalingOf } from "./rope.js";
import { checkMemoryPlan, kvLayerFormats, machineMemoryBytes } from "./memory.js";
import { loadSessionState, saveSessionState } from "./session-state.js";

export class ContextFullError extends Error {
  constructor(readonly contextSize: number) {
    super(`the context is full (${contextSize} tokens); create a session with a larger contextSize`);
    this.name = "ContextFullError";
  }
}

/** Length of the common prefix of a and b. */
export function commonPrefixLength(a: readonly number[], b: readonly number[]): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a[i] === b[i]) i++;
  return i;
}

/** Session.truncate cannot keep a shorter prefix of this session's cache (an exact recent window). */
export class TruncateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TruncateError";
  }
}

export class Session {
  readonly contextSize: number;
  /** K/V formats of each layer. */
  readonly kv: readonly KvPair[];
  readonly rotation: boolean;
  /** Positions each query reads exactly (f16) before the packed formats take over (SessionOptions.kvWindow; a layer's KvPair.window overrides it). */
  readonly kvWindow: number;
  /** First positions every query reads exactly (f16) (SessionOptions.kvSinks). */
  readonly kvSinks: number;
  /** The format of the window's and sinks' rows (SessionOptions.kvExactFormat). */
  readonly kvExactFormat: ExactFormatName;
  /** Set when contextSize exceeds the model's trained context (llama.cpp warns the same way); the CLI prints it. */
  readonly contextWarning: string | undefined;
  private readonly ctx: ForwardContext;
  private pos = 0;
  /** The token ids in the cache, in order (pos of them). */
  private history: number[] = [];
  private disposed = false;

  constructor(
    private readonly model: Model,
    opts: SessionOptions = {},
  ) {
    const c = model.config;
    this.contextSize = opts.contextSize ?? c.contextLength;
    if (!Number.isInteger(this.contextSize) || this.contextSize < 1) {
      throw new RangeError(`contextSize must be a positive integer, got ${opts.contextSize}`);
    }
    if (this.contextSize > c.contextLength) {
      this.contextWarning =
        `the context (${this.contextSize} tokens) is longer than the model was trained on (${c.contextLength}): ` +
        "past that, positions it never saw can make the output degrade";
    }
    const kv = opts.kv ?? DEFAULT_KV;
    const perLayer: readonly KvPair[] = Array.isArray(kv) ? kv : new Array<KvPair>(c.nLayers).fill(kv as KvPair);
    const malformed = perLayer.findIndex((p) => typeof p !== "object" || p === null || typeof p.k !== "string" || typeof p.v !== "string");
    if (malformed >= 0) {
      throw new RangeError(
        `kv must be { k, v } (format names, e.g. { k: "q8_0", v: "q4_0" }) or one such pair per layer, got ${String(JSON.stringify(perLayer[malformed]))}; ` +
          `for a shorthand such as "K8V4" pass kvPairsOf(parseKvConfig("K8V4"))`,
      );
    }
    if (perLayer.length !== c.nLayers) {
      throw new RangeError(`kv has ${perLayer.length} entries but the model has ${c.nLayers} layers`);
    }
    this.kv = perLayer.map((p) => ({ ...p }));
    this.rotation = opts.rotation ?? true;
    this.kvWindow = opts.kvWindow ?? 0;
    if (!Number.isInteger(this.kvWindow) || this.kvWindow < 0) throw new RangeError(`kvWindow must be a non-negative integer, got ${opts.kvWindow}`);
    this.kvWindow = Math.min(this.kvWindow, this.contextSize);
    this.kvSinks = opts.kvSinks ?? 0;
    if (!Number.isInteger(this.kvSinks) || this.kvSinks < 0) throw new RangeError(`kvSinks must be a non-negative integer, got ${opts.kvSinks}`);
    this.kvSinks = Math.min(this.kvSinks, this.contextSize);
    this.kvExactFormat = opts.kvExactFormat ?? "f16";
    if (!isExactFormatName(this.kvExactFormat)) {
      throw new RangeError(`kvExactFormat must be one of ${EXACT_FORMAT_NAMES.join(", ")}, got ${JSON.stringify(opts.kvExactFormat)}`);
    }
    // a layer's own window and sinks are checked by the KV cache (kv/cache.ts checkOptions)
    const layers: KvLayerFormats[] = kvLayerFormats(c, this.kv);
    // Fail before any large allocation if this session cannot fit beside what the model's memories already hold.
    const available = (model.memoryLimit ?? machineMemoryBytes()) - (model.shards.usedBytes - model.weights.bytes);
    checkMemoryPlan(c, model.weights.bytes, this.contextSize, this.kv, {
      threads: model.pool.nThreads,
      batchTokens: model.batchSize,
      available,
      shardBytes: model.shards.shardBytes,
      window: this.kvWindow,
      sinks: this.kvSinks,
      exactFormat: this.kvExactFormat,
    });
    this.ctx = {
      config: c,
      weights: model.weights,
      shards: model.scratch,
      cache: new ShardedKvCache(model.shards, {
        nLayers: c.nLayers,
        nHeads: c.nHeads,
        nKvHeads: c.nKvHeads,
        headDim: c.headDim,
        contextSize: this.contextSize,
        layers,
        rotation: this.rotation,
        pool: model.pool,
        inputShard: model.weights.layerShard,
        maxTokens: model.batchSize,
        window: this.kvWindow,
        sinks: this.kvSinks,
        exactFormat: this.kvExactFormat,
      }),
    };
  }

  /** Tokens already in the cache. */
  get position(): number {
    return this.pos;
  }

  /** The token ids the cache holds, in order (a copy). */
  get tokens(): number[] {
    return [...this.history];
  }

  /**
   * Save the cache as it is stored (token ids, packed K/V of every layer, exact rows) to `file`, written atomically,
   * with the model's identity and every layer's formats; loadState refuses it anywhere else. Returns its bytes.
   */
  saveState(file: string): number {
    return saveSessionState(this, this.model, file);
  }

  /** Replace the cache by a state saveState wrote for this model and these K/V formats (StateFileError otherwise). */
  loadState(file: string): void {
    const { position, tokens } = loadSessionState(this, this.model, file);
    this.pos = position;
    this.history = tokens;
  }

  /** Exact bytes of the KV cache storage (all layers, whole context). */
  get kvBytes(): number {
    return this.ctx.cache.bytes();
  }

  /** Evaluate tokens after those already cached; returns the next-token logits after the last one (a copy, nVocab). */
  eval(tokens: readonly number[]): Float32Array {
    const out = new Float32Array(this.model.config.nVocab);
    this.run(tokens, "last", (logits) => copyFloats(out, logits));
    return out;
  }

  /** Evaluate tokens and return the logits after every one of them: (tokens.length, nVocab), row-major. */
  evalAll(tokens: readonly number[]): Float32Array {
    const nVocab = this.model.config.nVocab;
    const out = new Float32Array(tokens.length * nVocab);
    this.evalRows(tokens, (firstRow, logits) => copyFloats(out, logits, firstRow * nVocab));
    return out;
  }

  /**
   * Evaluate tokens after those already cached, handing every token's logits to `onRows` batch by batch:
   * `logits` is (n, nVocab) for tokens firstRow .. firstRow + n − 1 of `tokens`, a view valid until the callback
   * returns. What evalAll returns, without holding (tokens, nVocab) floats at once (a 32K context of a 128K vocabulary
   * would be 16 GiB).
   */
  evalRows(tokens: readonly number[], onRows: (firstRow: number, logits: Float32Array) => void): void {
    const nVocab = this.model.config.nVocab;
    let row = 0;
    this.run(tokens, "all", (logits) => {
      onRows(row, logits);
      row += logits.length / nVocab;
    });
  }

  /**
   * Keep only the first n cached tokens (n <= position), so evaluation continues at position n: what a chat or server
   * does when a new prompt shares only a prefix with what is cached. Layers with an exact recent window cannot go back
   * (the window's ring has overwritten the f16 rows of earlier positions): there only n = 0 (reset) or n = position.
   */
  truncate(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > this.pos) throw new RangeError(`truncate(${n}): keep between 0 and ${this.pos} cached tokens`);
    if (n === this.pos) return;
    if (n === 0) return this.reset();
    if (!this.canTruncate) {
      throw new TruncateError(`cannot go back from ${this.pos} to ${n} cached tokens: a layer keeps an exact recent window, whose f16 rows of earlier positions are gone; reset() and evaluate again`);
    }
    this.pos = n;
    this.history.length = n;
    this.ctx.cache.setLength(n);
  }

  /** Tokens at the start of `tokens` that the cache already holds. */
  sharedPrefix(tokens: readonly number[]): number {
    return commonPrefixLength(this.history, tokens);
  }

  /**
   * Prepare to evaluate `tokens` from position 0 reusing the cache: keep the prefix it already holds (at least one
   * token is left to evaluate, for the logits after the last), going back with truncate(), or resetting where an
   * exact window cannot go back. Returns how many tokens were kept and whether the cache had to start over.
   */
  keepPrefix(tokens: readonly number[]): { kept: number; restarted: boolean } {
    const kept = Math.min(this.sharedPrefix(tokens), tokens.length - 1);
    if (kept >= this.pos) return { kept, restarted: false };
    if (this.canTruncate || kept === 0) {
      this.truncate(kept);
      return { kept, restarted: false };
    }
    this.reset();
    return { kept: 0, restarted: true };
  }

  /** Whether truncate() can keep a shorter prefix than position (no layer has an exact recent window). */
  get canTruncate(): boolean {
    return !this.ctx.cache.hasExactWindow;
  }

  /** Forget every cached token. */
  reset(): void {
    this.pos = 0;
    this.history = [];
    this.ctx.cache.setLength(0);
  }

  /** The KV cache (layouts, packed rows, shards): for tests and reports. */
  get cache(): ShardedKvCache {
    return this.ctx.cache;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.ctx.cache.dispose();
  }

  /**
   * This session's part of a batch over several sessions of one model (model/batch.ts): `tokens` at the next
   * positions, checked as eval checks them. Call advance(tokens) once the batch has run.
   */
  batchPart(tokens: readonly number[], wanted: LogitsWanted): BatchSequence {
    this.checkTokens(tokens);
    return { cache: this.ctx.cache, tokens, pos0: this.pos, wanted };
  }

  /** After a batch ran `tokens` of this session (batchPart): they are in the cache now. */
  advance(tokens: readonly number[]): void {
    this.history.push(...tokens);
    this.pos += tokens.length;
    this.ctx.cache.setLength(this.pos);
  }

  /**
   * Context shift, as llama.cpp does it when a context fills: keep the first nKeep tokens, drop the next nDiscard, and
   * move the rest down, their keys turned back by nDiscard rotary positions (decoded, rotated, stored again in the
   * layer's K format, for every format). Layers with an exact window or keys per channel cannot shift
   * (canShift(nKeep) is false): evaluate the kept tokens again there.
   */
  shift(nKeep: number, nDiscard: number): void {
    if (this.disposed) throw new Error("the session has been disposed");
    const c = this.model.config;
    const scaling = { ...ropeScalingOf(c, this.model.weights), attnFactor: 1 };
    this.ctx.cache.shift(nKeep, nDiscard, (rt, rowsPtr, nRows) => {
      const table = new RopeRows(rt, nRows, c.ropeDim, c.ropeBase, scaling);
      try {
        table.fillPositions(new Array<number>(nRows).fill(-nDiscard));
        rt.k[ROPE_ROWS_KERNEL[c.ropeKind]](rowsPtr, nRows, c.nKvHeads, c.headDim, c.ropeDim, table.ptr);
      } finally {
        table.dispose();
      }
    });
    this.history.splice(nKeep, nDiscard);
    this.pos -= nDiscard;
  }

  /** Whether shift(nKeep, ...) can run (no exact window, no keys per channel, sinks within nKeep). */
  canShift(nKeep: number): boolean {
    return this.ctx.cache.canShift(nKeep);
  }

  /** Whether this session runs on `model` (a batch takes sessions of one model). */
  belongsTo(model: Model): boolean {
    return this.model === model;
  }

  private checkTokens(tokens: readonly number[]): void {
    if (this.disposed) throw new Error("the session has been disposed");
    const nVocab = this.model.config.nVocab;
    for (const t of tokens) {
      if (!Number.isInteger(t) || t < 0 || t >= nVocab) throw new RangeError(`token id ${t} is outside the vocabulary [0, ${nVocab})`);
    }
    if (this.pos + tokens.length > this.contextSize) throw new ContextFullError(this.contextSize);
  }

  /** Run tokens in batches of the model's batchSize; `onLogits` receives each batch's wanted logits rows (a view, valid until the next batch). */
  private run(tokens: readonly number[], wanted: "last" | "all", onLogits: (logits: Float32Array) => void): void {
    this.checkTokens(tokens);
    const batchSize = this.model.batchSize;
    for (let start = 0; start < tokens.length; start += batchSize) {
      const batch = tokens.slice(start, start + batchSize);
      const isLast = start + batchSize >= tokens.length;
      const want: LogitsWanted = wanted === "all" ? "all" : isLast ? "last" : "none";
      forward(this.ctx, batch, this.pos, want);
      this.history.push(...batch);
      this.pos += batch.length;
      this.ctx.cache.setLength(this.pos);
      if (want !== "none") onLogits(this.readLogits(want === "all" ? batch.length : 1));
    }
  }

  private readLogits(rows: number): Float32Array {
    const first = this.ctx.shards[0]; // the output runs in shard 0
    return first.rt.f32(first.state.logits, rows * this.model.config.nVocab);
  }
}
