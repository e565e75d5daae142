/**
 * Speed measurement, llama-bench's way, shared by both engines: the method (what is timed, on which tokens) lives in
 * `measureRun` once, and each engine only supplies a `BenchEngineSession` (batched evaluation, single-token generation,
 * reset). This file also holds the kvsplit side (`runKvsplitJob`) and the KV-byte arithmetic used for llama.cpp.
 *
 * One run (one engine, one K/V config, one repetition), in a fresh process (see bench-runner.ts):
 *   warm-up  a small batch and one generated token (touches every weight page, compiles the JIT paths), then reset
 *   pp       from an empty cache, `promptTokens` tokens in one batch (llama-bench's pp): promptTokens / seconds
 *   per depth, ascending: fill the cache to `depth` tokens (batches of BENCH_BATCH_SIZE, not timed; a run that is already
 *            past `depth` starts again from an empty cache), then decode `genTokens` tokens one at a time, each the
 *            greedy choice after the previous one (llama-bench's tg at depth): genTokens / seconds
 * Tokens are a fixed pseudo-random sequence (seeded), the same for both engines.
 */
import { getKvFormat, rowBytes } from "../formats/table.js";
import type { KvPair } from "../api.js";
import type { KvFormatName } from "../formats/types.js";
import { loadModel } from "../model/model.js";
import type { Session } from "../model/session.js";

export const BENCH_ENGINES = ["kvsplit", "llama.cpp"] as const;
export type BenchEngine = (typeof BENCH_ENGINES)[number];

/** Tokens given to one batched evaluation at most: llama-bench's default n_ubatch. */
export const BENCH_BATCH_SIZE = 512;
/** llama.cpp pads context sizes up to a multiple of this; both engines get the same padded size. */
export const CONTEXT_PADDING = 256;

/** Everything one run needs; plain data, so it crosses a process boundary as JSON. */
export interface BenchJob {
  engine: BenchEngine;
  modelPath: string;
  /** Shorthand of the K/V pair (`K8V4`), for messages. */
  config: string;
  /** The formats of every layer, or "mixed" with `layers` (a schedule; kvsplit only). */
  k: KvFormatName | "mixed";
  v: KvFormatName | "mixed";
  layers?: readonly KvPair[];
  /** Exact recent window and sinks (SessionOptions.kvWindow, kvSinks; kvsplit only), and their rows' format (kvExactFormat). */
  window?: number;
  sinks?: number;
  exactFormat?: "q8_0";
  /** Keys per channel (KvPair.kLayout; kvsplit only). */
  kLayout?: "channel";
  /** Cache depths before generation, ascending. */
  depths: number[];
  /** Tokens of the timed prompt batch (-p). */
  promptTokens: number;
  /** Tokens generated one at a time at each depth (-n). */
  genTokens: number;
  threads: number;
  /** Positions the cache holds (benchContextSize). */
  contextSize: number;
  /** Token ids are drawn from [0, nVocab). */
  nVocab: number;
  /** Model shape, for the K/V byte arithmetic. */
  nLayers: number;
  kvDim: number;
  seed: number;
}

/** What one run measured. */
export interface BenchRunResult {
  engine: BenchEngine;
  config: string;
  ppTps: number;
  /** Generation tokens/s, one per job.depths entry (same order). */
  tgTps: number[];
  /** Bytes of K/V storage for the whole context: exact for kvsplit, the format arithmetic for llama.cpp. */
  kvBytes: number;
  /** The context size the engine actually created. */
  contextSize: number;
  /** Peak resident set of the process that ran the engine (filled in by the child process). */
  rssPeakBytes: number;
}

/** The part of an engine the method needs. Methods may be synchronous (kvsplit) or asynchronous (llama.cpp). */
export interface BenchEngineSession {
  /** Tokens in the cache. */
  readonly position: number;
  reset(): void | Promise<void>;
  /** Evaluate `tokens` (at most BENCH_BATCH_SIZE) as one batch after the cached ones. */
  evalBatch(tokens: number[]): void | Promise<void>;
  /** Evaluate `first`, then each greedy next token, `count` single-token evaluations in all. */
  generate(first: number, count: number): void | Promise<void>;
}

/** Tokens the cache must hold for a plan: the deepest generation or the prompt batch, padded like llama.cpp's. */
export function benchContextSize(depths: readonly number[], promptTokens: number, genTokens: number): number {
  const needed = Math.max(promptTokens, Math.max(...depths) + genTokens) + 1; // +1: llama.cpp crashed at an exactly full context
  return Math.ceil(needed / CONTEXT_PADDING) * CONTEXT_PADDING;
}

/** `count` token ids in [0, nVocab) from a seeded generator (mulberry32): the same list in every process. */
export function benchTokens(count: number, nVocab: number, seed: number): number[] {
  let state = seed >>> 0;
  const tokens: number[] = [];
  for (let i = 0; i < count; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const unit = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    tokens.push(Math.floor(unit * nVocab));
  }
  return tokens;
}

/**
 * K/V bytes of a context by the format table's arithmetic, the way llama.cpp sizes its cache: per layer, contextSize
 * rows of kvDim values for K and again for V (no padding: llama.cpp needs kvDim to be whole blocks).
 */
export function kvBytesByArithmetic(k: KvFormatName, v: KvFormatName, nLayers: number, kvDim: number, contextSize: number): number {
  return nLayers * contextSize * (rowBytes(getKvFormat(k), kvDim) + rowBytes(getKvFormat(v), kvDim));
}

async function evalInBatches(engine: BenchEngineSession, tokens: number[]): Promise<void> {
  for (let i = 0; i < tokens.length; i += BENCH_BATCH_SIZE) await engine.evalBatch(tokens.slice(i, i + BENCH_BATCH_SIZE));
}

/** The method: warm-up, pp from an empty cache, then tg at each depth. Returns tokens/s. */
export async function measureRun(engine: BenchEngineSession, job: BenchJob): Promise<{ ppTps: number; tgTps: number[] }> {
  const { promptTokens, genTokens, depths } = job;
  const maxDepth = Math.max(...depths);
  const tokens = benchTokens(Math.max(promptTokens, maxDepth) + 1, job.nVocab, job.seed);

  await engine.evalBatch(tokens.slice(0, Math.min(8, promptTokens)));
  await engine.generate(tokens[maxDepth]!, 2);
  await engine.reset();

  let started = performance.now();
  await evalInBatches(engine, tokens.slice(0, promptTokens));
  const ppTps = promptTokens / ((performance.now() - started) / 1000);

  const tgTps: number[] = [];
  for (const depth of depths) {
    if (engine.position > depth) await engine.reset();
    if (engine.position < depth) await evalInBatches(engine, tokens.slice(engine.position, depth));
    started = performance.now();
    await engine.generate(tokens[depth]!, genTokens);
    tgTps.push(genTokens / ((performance.now() - started) / 1000));
  }
  return { ppTps, tgTps };
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** kvsplit's Session seen through the method's interface. */
class KvsplitBenchSession implements BenchEngineSession {
  constructor(private readonly session: Session) {}

  get position(): number {
    return this.session.position;
  }

  reset(): void {
    this.session.reset();
  }

  evalBatch(tokens: number[]): void {
    this.session.eval(tokens);
  }

  generate(first: number, count: number): void {
    let next = first;
    for (let i = 0; i < count; i++) next = argmax(this.session.eval([next]));
  }
}

/** One kvsplit run in this process: load the model with `job.threads` threads, measure, dispose. */
export async function runKvsplitJob(job: BenchJob): Promise<BenchRunResult> {
  const kv = job.layers ?? { k: job.k as KvFormatName, v: job.v as KvFormatName, ...(job.kLayout ? { kLayout: job.kLayout } : {}) };
  const model = loadModel(job.modelPath, { threads: job.threads, session: { contextSize: job.contextSize, kv, kvWindow: job.window, kvSinks: job.sinks, kvExactFormat: job.exactFormat } });
  try {
    const session = model.createSession({ contextSize: job.contextSize, kv, kvWindow: job.window, kvSinks: job.sinks, kvExactFormat: job.exactFormat });
    try {
      const { ppTps, tgTps } = await measureRun(new KvsplitBenchSession(session), job);
      return { engine: "kvsplit", config: job.config, ppTps, tgTps, kvBytes: session.kvBytes, contextSize: session.contextSize, rssPeakBytes: 0 };
    } finally {
      session.dispose();
    }
  } finally {
    model.dispose();
  }
}

/** The median of a non-empty list (the mean of the two middle values for an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median of an empty list");
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
