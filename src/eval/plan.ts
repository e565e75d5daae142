/**
 * The memory planner: for a model (read from its GGUF header only) and each K/V config, the KV bytes per token and
 * either the longest context that fits in a memory budget or the bytes a given context needs.
 * Budgets count the weights, the KV cache and the session's scratch (planMemory). Memory is split into WebAssembly
 * memories of at most 4 GiB each (shards), so the limit is the budget, or the machine's memory without one.
 */
import { kvPairsOf, type KvConfig } from "../kv/shorthand.js";
import { checkScheduleLayers } from "../kv/schedule.js";
import { kvBytesPerToken } from "../kv/cache.js";
import { readGgufHeader } from "../gguf/reader.js";
import { configFromGguf, type ModelConfig } from "../model/config.js";
import { kvLayerFormats, machineMemoryBytes, planMemory, type MemoryPlanOptions } from "../model/memory.js";
import { weightBytes } from "../model/weights.js";

export interface PlanRow {
  config: string;
  k: string;
  v: string;
  kv_bytes_per_token: number;
  /** With a budget: the longest context whose weights + KV + scratch fit in the budget. */
  max_ctx?: number;
  /** With a budget: max_ctx is past the model's trained context length. */
  beyond_trained?: boolean;
  /** With a context: KV cache bytes at that context, and everything together (weights + KV + scratch). */
  bytes?: number;
  total_bytes?: number;
  /** With a context: whether it fits in this machine's memory (and every layer's cache in one 4 GiB memory). */
  fits?: boolean;
  /** WebAssembly memories (at most 4 GiB each) the model and the cache are estimated to take. */
  shards?: number;
}

export interface PlanModel {
  config: ModelConfig;
  weightsBytes: number;
}

/**
 * What the session's scratch is sized for, as loadModel sizes it: its threads (LoadOptions.threads) and the tokens of
 * one forward pass (LoadOptions.batchSize); planMemory's defaults, 1 and 1, where not given.
 */
export type PlanSizing = Pick<MemoryPlanOptions, "threads" | "batchTokens">;

/** Config and weight bytes from the header; the tensor data is never read. */
export function readPlanModel(path: string): PlanModel {
  const gguf = readGgufHeader(path);
  return { config: configFromGguf(gguf), weightsBytes: weightBytes(gguf) };
}

export function planRows(model: PlanModel, configs: readonly KvConfig[], target: { memory: number } | { ctx: number }, sizing: PlanSizing = {}): PlanRow[] {
  const { config: c, weightsBytes } = model;
  return configs.map((cfg) => {
    const pairs = kvPairsOf(cfg);
    if (cfg.layers) checkScheduleLayers(cfg.layers, c.nLayers, cfg.scheduleFile ?? cfg.name);
    const layers = kvLayerFormats(c, pairs);
    const row: PlanRow = { config: cfg.name, k: cfg.k, v: cfg.v, kv_bytes_per_token: kvBytesPerToken(layers, c.kvDim) };
    const window = cfg.window ?? 0;
    const sinks = cfg.sinks ?? 0;
    const exactFormat = cfg.exactFormat;
    const options = { ...sizing, window, sinks, exactFormat };
    if ("memory" in target) {
      const budget = { ...options, available: target.memory };
      const plan = planMemory(c, weightsBytes, 1, pairs, budget);
      row.max_ctx = plan.maxContextSize;
      row.beyond_trained = plan.maxContextSize > c.contextLength;
      row.shards = planMemory(c, weightsBytes, Math.max(1, plan.maxContextSize), pairs, budget).shards;
    } else {
      const plan = planMemory(c, weightsBytes, target.ctx, pairs, { ...options, available: machineMemoryBytes() });
      row.bytes = plan.kv;
      row.total_bytes = plan.total;
      row.fits = plan.total <= plan.available && plan.shardLimit === undefined;
      row.shards = plan.shards;
    }
    return row;
  });
}

const UNITS: Record<string, number> = {
  "": 1, b: 1,
  k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, tib: 1024 ** 4,
};

/** "8GiB", "512 MiB", "6GB", "1e9" → bytes; RangeError naming the value and the units otherwise. */
export function parseByteSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?(?:e\d+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined || !(Number(m[1]) > 0)) {
    throw new RangeError(`'${text}' is not a memory size; use a number with B, KiB, MiB, GiB, TiB (or kB, MB, GB, TB), e.g. 8GiB`);
  }
  return Math.floor(Number(m[1]) * unit);
}
