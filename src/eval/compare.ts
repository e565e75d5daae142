/**
 * The K/V comparison: for each K/V configuration, what it saves (bytes per token and at several context lengths)
 * and what it costs (perplexity change, KL divergence and same-top-token fraction against an f32 cache run once and
 * reused, plus prompt and generation speed from a short timed run).
 *
 * Besides the configurations asked for, the plan adds (unless turned off) the keys-vs-values sensitivity set: for each
 * of 8 and 4 bits, keys only, values only, both; and with a sweep, one side through every KV format while the other
 * stays f16.
 */
import type { KvPair } from "../api.js";
import { getKvFormat } from "../formats/table.js";
import { KV_FORMAT_NAMES, type ExactFormatName, type KvFormatName } from "../formats/types.js";
import { kvBitsPerValue, kvBytesPerToken, kvExactBytesOf } from "../kv/cache.js";
import { exactOptions, isKvsplitOnly, kvConfigName, kvPairsOf, type KvConfig } from "../kv/shorthand.js";
import { kvLayerFormats } from "../model/memory.js";
import type { Model } from "../model/model.js";
import { BaselineDistributions } from "./kld-file.js";
import { runPerplexity, type EvalText, type PerplexityRunResult } from "./perplexity.js";

/** Context lengths the memory columns report (plus the model's trained context). */
export const MEMORY_CONTEXTS: readonly number[] = [128, 2048, 4096, 8192];
/** Bit widths of the default keys-vs-values sensitivity set (KxV16, K16Vx, KxVx). */
export const SENSITIVITY_FORMATS: readonly KvFormatName[] = ["q8_0", "q4_0"];
export const DEFAULT_COMPARE_CONFIGS = "F16,K8V8,K8V4,K4V8,K4V4";
export const BASELINE_KV: KvPair = { k: "f32", v: "f32" };

/** Why a configuration is in the plan. */
export type RowGroup = "config" | "sensitivity" | "sweep";
export type SweepSide = "k" | "v";

export interface PlannedConfig extends KvConfig {
  group: RowGroup;
}

export interface ComparePlanOptions {
  /** Add the keys-only / values-only / both set at 8 and 4 bits. */
  sensitivity: boolean;
  /** Sides to sweep through every KV format with the other side f16. */
  sweep: readonly SweepSide[];
}

/** The configurations to run, in order, each once (the first reason it was added names its group). */
export function planConfigs(configs: readonly KvConfig[], opts: ComparePlanOptions): PlannedConfig[] {
  const plan: PlannedConfig[] = [];
  const seen = new Set<string>();
  const add = (k: KvFormatName, v: KvFormatName, group: RowGroup): void => {
    const key = `${k}/${v}`;
    if (seen.has(key)) return;
    seen.add(key);
    plan.push({ name: kvConfigName(k, v), k, v, group });
  };
  for (const c of configs) {
    if (c.layers || c.window || c.sinks || c.keysPerChannel) {
      // a schedule: its own row, whatever its layers hold
      if (!seen.has(c.name)) plan.push({ ...c, group: "config" });
      seen.add(c.name);
    } else {
      add(c.k as KvFormatName, c.v as KvFormatName, "config");
    }
  }
  if (opts.sensitivity) {
    for (const f of SENSITIVITY_FORMATS) {
      add(f, "f16", "sensitivity");
      add("f16", f, "sensitivity");
      add(f, f, "sensitivity");
    }
  }
  for (const side of opts.sweep) {
    for (const f of KV_FORMAT_NAMES) {
      if (f === "f16") continue;
      if (side === "k") add(f, "f16", "sweep");
      else add("f16", f, "sweep");
    }
  }
  return plan;
}

/** The sweep sides named by `--sweep k,v` (either or both). */
export function parseSweep(spec: string): SweepSide[] {
  const sides = spec.split(",").map((s) => s.trim().toLowerCase());
  const out: SweepSide[] = [];
  for (const s of sides) {
    if (s !== "k" && s !== "v") throw new RangeError(`--sweep ${spec}: '${s}' is not a side; allowed: k, v, or k,v`);
    if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** Bytes of KV cache per token and at each context length, for one K/V pair on every layer or a schedule. */
export interface KvMemory {
  bytesPerToken: number;
  /** Context length → bytes, for MEMORY_CONTEXTS and the trained context. */
  bytesAt: Map<number, number>;
}

export function kvMemory(
  model: Model, kv: KvPair | readonly KvPair[], contexts: readonly number[], window = 0, sinks = 0, exactFormat: ExactFormatName = "f16",
): KvMemory {
  const c = model.config;
  const layers = kvLayerFormats(c, kv);
  const bytesPerToken = kvBytesPerToken(layers, c.kvDim);
  const at = (n: number) => n * bytesPerToken + kvExactBytesOf(layers, { window, sinks, exactFormat }, n, c.kvDim);
  return { bytesPerToken, bytesAt: new Map(contexts.map((n) => [n, at(n)])) };
}

export interface SpeedOptions {
  /** Tokens evaluated as the prompt (default 128). */
  promptTokens: number;
  /** Single-token evaluations after it (default 32). */
  genTokens: number;
  /** Timed runs; the fastest of each phase is reported (the least disturbed by other load). Default 3. */
  reps?: number;
}

export interface Speed {
  ppTps: number;
  tgTps: number;
}

/**
 * Short timed runs: `promptTokens` of `tokens` as one prompt, then `genTokens` single-token evaluations fed the
 * following tokens of the text (no sampling: only the model and the cache are timed). The fastest of `reps` runs.
 */
export function measureSpeed(
  model: Model, kv: KvPair | readonly KvPair[], rotation: boolean, tokens: readonly number[], opts: SpeedOptions, exact: { kvWindow?: number; kvSinks?: number; kvExactFormat?: ExactFormatName } = {},
): Speed {
  const need = opts.promptTokens + opts.genTokens;
  if (tokens.length < need) throw new RangeError(`the speed run needs ${need} tokens, the chunk has ${tokens.length}`);
  const reps = opts.reps ?? 3;
  const session = model.createSession({ contextSize: need, kv, rotation, ...exact });
  let best: Speed = { ppTps: 0, tgTps: opts.genTokens > 0 ? 0 : NaN };
  try {
    for (let rep = 0; rep < reps; rep++) {
      session.reset();
      const t0 = performance.now();
      session.eval(tokens.slice(0, opts.promptTokens));
      const t1 = performance.now();
      for (let i = 0; i < opts.genTokens; i++) session.eval([tokens[opts.promptTokens + i]]);
      const t2 = performance.now();
      best = {
        ppTps: Math.max(best.ppTps, (1000 * opts.promptTokens) / (t1 - t0)),
        tgTps: opts.genTokens > 0 ? Math.max(best.tgTps, (1000 * opts.genTokens) / (t2 - t1)) : NaN,
      };
    }
    return best;
  } finally {
    session.dispose();
  }
}

export interface CompareRow {
  config: string;
  /** "mixed" for a schedule whose layers differ on that side. */
  k: KvFormatName | "mixed";
  v: KvFormatName | "mixed";
  /** kvsplit's own: a config llama.cpp cannot run (a per-layer schedule, an exact window or sinks, an own format). */
  kvsplitOnly: boolean;
  group: RowGroup;
  /** Bytes per token at the evaluated context: kvBytes / ctx (the per-token rows, plus a window's f16 rows spread over ctx). */
  kvBytesPerToken: number;
  /** Bytes the cache held for the evaluated context (ctx positions), and as bits per cached value (kv/cache.ts). */
  kvBytes: number;
  kvBitsPerValue: number;
  /** Context length → bytes (MEMORY_CONTEXTS and the trained context). */
  kvBytesAt: Map<number, number>;
  /** 100 × (1 − bytes / f16 bytes). */
  savedVsF16Pct: number;
  ppTps: number;
  tgTps: number;
  ppl: number;
  pplStderr: number;
  deltaPplPct: number;
  deltaPplPctStderr: number;
  kldMean: number;
  kldMeanStderr: number;
  kldMedian: number;
  kldP99: number;
  /** Fraction (0..1) of positions with the same most likely token as the f32 cache. */
  top1Agree: number;
  /** Wall time of this configuration's perplexity run, seconds. */
  evalSeconds: number;
}

export interface CompareResult {
  modelPath: string;
  config: Model["config"];
  ctx: number;
  nChunks: number;
  /** Tokens scored per configuration. */
  nScored: number;
  textSha256: string;
  rotation: boolean;
  trainedContext: number;
  /** Context lengths of the memory columns, the trained context last. */
  memoryContexts: number[];
  baseline: { kv: KvPair; ppl: number; pplStderr: number; ppTps: number; tgTps: number; evalSeconds: number };
  speed: SpeedOptions;
  rows: CompareRow[];
}

export type CompareProgress =
  | { phase: "chunk"; config: string; index: number; total: number; done: number; nChunks: number }
  | { phase: "config-done"; config: string; index: number; total: number; seconds: number };

export interface CompareOptions {
  plan: readonly PlannedConfig[];
  rotation: boolean;
  speed: SpeedOptions;
  onProgress?: (p: CompareProgress) => void;
  /** Called with the result so far (the baseline and every finished config) after each config: partial results. */
  onResult?: (partial: CompareResult) => void;
}

/** Run the f32 baseline once, then every planned configuration against it. */
export function runCompare(model: Model, evalText: EvalText, opts: CompareOptions): CompareResult {
  const c = model.config;
  const memoryContexts = [...MEMORY_CONTEXTS, c.contextLength];
  const total = opts.plan.length + 1;
  const speedTokens = evalText.chunks[0];
  const speed = fitSpeed(opts.speed, speedTokens.length);
  const f16 = kvMemory(model, { k: "f16", v: "f16" }, memoryContexts);

  const base = new BaselineDistributions(c.nVocab, evalText.ctx, evalText.chunks.length);
  const progress = (name: string, index: number) => (done: number, nChunks: number) =>
    opts.onProgress?.({ phase: "chunk", config: name, index, total, done, nChunks });
  const baseRun = runPerplexity(model, evalText, { kv: BASELINE_KV, rotation: opts.rotation, record: base, onChunk: progress("F32 (baseline)", 0) });
  const baseSpeed = measureSpeed(model, BASELINE_KV, opts.rotation, speedTokens, speed);
  opts.onProgress?.({ phase: "config-done", config: "F32 (baseline)", index: 0, total, seconds: baseRun.ms / 1000 });

  const rows: CompareRow[] = [];
  const resultSoFar = (): CompareResult => ({
    modelPath: model.path,
    config: c,
    ctx: evalText.ctx,
    nChunks: evalText.chunks.length,
    nScored: baseRun.nTokens,
    textSha256: evalText.textSha256,
    rotation: opts.rotation,
    trainedContext: c.contextLength,
    memoryContexts,
    baseline: { kv: BASELINE_KV, ppl: baseRun.ppl, pplStderr: baseRun.pplStderr, ppTps: baseSpeed.ppTps, tgTps: baseSpeed.tgTps, evalSeconds: baseRun.ms / 1000 },
    speed,
    rows: [...rows],
  });
  opts.plan.forEach((p, i) => {
    const kv = kvPairsOf(p);
    const exact = exactOptions(p);
    const run: PerplexityRunResult = runPerplexity(model, evalText, { kv, ...exact, rotation: opts.rotation, baseline: base, onChunk: progress(p.name, i + 1) });
    const s = measureSpeed(model, kv, opts.rotation, speedTokens, speed, exact);
    const mem = kvMemory(model, kv, memoryContexts, p.window ?? 0, p.sinks ?? 0, p.exactFormat);
    const kld = run.kld!;
    rows.push({
      config: p.name,
      k: p.k,
      v: p.v,
      kvsplitOnly: isKvsplitOnly(p),
      group: p.group,
      // at the evaluated context: a window's fixed f16 rows spread over its positions (the rest is per token)
      kvBytesPerToken: run.kvBytes / evalText.ctx,
      kvBytes: run.kvBytes,
      kvBitsPerValue: kvBitsPerValue(run.kvBytes, evalText.ctx, c.nLayers, c.kvDim),
      kvBytesAt: mem.bytesAt,
      savedVsF16Pct: 100 * (1 - run.kvBytes / evalText.ctx / f16.bytesPerToken),
      ppTps: s.ppTps,
      tgTps: s.tgTps,
      ppl: run.ppl,
      pplStderr: run.pplStderr,
      deltaPplPct: kld.deltaPplPct,
      deltaPplPctStderr: kld.deltaPplPctStderr,
      kldMean: kld.kldMean,
      kldMeanStderr: kld.kldMeanStderr,
      kldMedian: kld.kldMedian,
      kldP99: kld.kldP99,
      top1Agree: kld.sameTopFraction,
      evalSeconds: run.ms / 1000,
    });
    opts.onProgress?.({ phase: "config-done", config: p.name, index: i + 1, total, seconds: run.ms / 1000 });
    opts.onResult?.(resultSoFar());
  });
  return resultSoFar();
}

/** What compare's default chunk count aims at: the whole run in about this many seconds. */
export const COMPARE_BUDGET_SECONDS = 60;

/**
 * The number of chunks (1 .. available) that lets the baseline and nConfigs configs finish in about budgetSeconds,
 * given one chunk's evaluation time (chunkMs, measured) and each config's timed speed run (its tokens costed as
 * prompt tokens, generation ones at 4×, at the chunk's rate per token).
 */
export function chunksForBudget(o: { available: number; nConfigs: number; chunkMs: number; ctx: number; speed: SpeedOptions; budgetSeconds: number }): number {
  const msPerToken = o.chunkMs / o.ctx;
  const speedMs = (o.speed.reps ?? 3) * (o.speed.promptTokens + 4 * o.speed.genTokens) * msPerToken;
  const perConfigMs = (1000 * o.budgetSeconds) / (o.nConfigs + 1) - speedMs;
  return Math.max(1, Math.min(o.available, Math.floor(perConfigMs / o.chunkMs)));
}

/** Shrink the timed run to fit a chunk: the prompt at most 3/4 of it, generation the rest. */
function fitSpeed(speed: SpeedOptions, available: number): SpeedOptions {
  const promptTokens = Math.max(1, Math.min(speed.promptTokens, Math.floor((3 * available) / 4)));
  const genTokens = Math.max(0, Math.min(speed.genTokens, available - promptTokens));
  return { promptTokens, genTokens, reps: speed.reps };
}

/**
 * Rows on the Pareto front of (bytes per token, mean KLD): no other row is at most as large and at most as lossy,
 * and strictly better in one of the two.
 */
export function paretoFront(rows: readonly Pick<CompareRow, "config" | "kvBytesPerToken" | "kldMean">[]): Set<string> {
  const front = new Set<string>();
  for (const r of rows) {
    const dominated = rows.some(
      (o) => o !== r && o.kvBytesPerToken <= r.kvBytesPerToken && o.kldMean <= r.kldMean && (o.kvBytesPerToken < r.kvBytesPerToken || o.kldMean < r.kldMean),
    );
    if (!dominated) front.add(r.config);
  }
  return front;
}
