/**
 * The comparison as data: the JSON object of DESIGN.md section 4 (`model`, `rows` with snake_case fields, extras
 * allowed), the same rows as CSV, and both written atomically into the output folder.
 */
import { mkdirSync } from "node:fs";
import path from "node:path";
import type { CompareResult, CompareRow } from "../eval/compare.js";
import { writeFileAtomic } from "./atomic.js";

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonRow = Record<string, string | number | null>;

/** The memory column name for a context length: kv_bytes_4096; the trained context gets kv_bytes_trained_ctx too. */
function memoryKey(n: number): string {
  return `kv_bytes_${n}`;
}

/** Non-finite numbers become null (JSON has no NaN). */
function num(x: number): number | null {
  return Number.isFinite(x) ? x : null;
}

export function rowToJson(row: CompareRow, result: CompareResult): JsonRow {
  const out: JsonRow = {
    config: row.config,
    k: row.k,
    v: row.v,
    group: row.group,
    kv_bytes_per_token: row.kvBytesPerToken,
  };
  for (const n of result.memoryContexts.slice(0, -1)) out[memoryKey(n)] = row.kvBytesAt.get(n) ?? null;
  out.kv_bytes_trained_ctx = row.kvBytesAt.get(result.trainedContext) ?? null;
  Object.assign(out, {
    kv_bytes: row.kvBytes,
    kv_bits_per_value: num(row.kvBitsPerValue),
    saved_vs_f16_pct: num(row.savedVsF16Pct),
    pp_tps: num(row.ppTps),
    tg_tps: num(row.tgTps),
    ppl: num(row.ppl),
    ppl_stderr: num(row.pplStderr),
    delta_ppl_pct: num(row.deltaPplPct),
    delta_ppl_pct_stderr: num(row.deltaPplPctStderr),
    kld_mean: num(row.kldMean),
    kld_mean_stderr: num(row.kldMeanStderr),
    kld_median: num(row.kldMedian),
    kld_p99: num(row.kldP99),
    top1_agree: num(row.top1Agree),
    eval_seconds: num(row.evalSeconds),
    kvsplit_only: row.kvsplitOnly ? 1 : 0,
  });
  return out;
}

export interface ResultsExtras {
  /** True when the model and text are the embedded default job's (no -m given). */
  embedded: boolean;
  /** Plain-language notes printed with the table (e.g. what the embedded default can and cannot show). */
  notes: string[];
  textLabel: string;
}

/** The `kvsplit compare --json` object and results.json. */
export function compareJson(result: CompareResult, extras: ResultsExtras): { [key: string]: JsonValue } {
  const c = result.config;
  return {
    model: result.modelPath,
    model_config: {
      architecture: c.architecture,
      n_layers: c.nLayers,
      n_heads: c.nHeads,
      n_kv_heads: c.nKvHeads,
      head_dim: c.headDim,
      n_vocab: c.nVocab,
      trained_ctx: c.contextLength,
    },
    embedded_default: extras.embedded,
    text: extras.textLabel,
    text_sha256: result.textSha256,
    ctx: result.ctx,
    chunks: result.nChunks,
    n_tokens: result.nScored,
    rotation: result.rotation,
    baseline: {
      config: "F32",
      k: result.baseline.kv.k,
      v: result.baseline.kv.v,
      ppl: num(result.baseline.ppl),
      ppl_stderr: num(result.baseline.pplStderr),
      pp_tps: num(result.baseline.ppTps),
      tg_tps: num(result.baseline.tgTps),
    },
    speed_run: { prompt_tokens: result.speed.promptTokens, gen_tokens: result.speed.genTokens, reps: result.speed.reps ?? 3, statistic: "fastest" },
    memory_contexts: result.memoryContexts,
    notes: extras.notes,
    rows: result.rows.map((r) => rowToJson(r, result)),
  };
}

/** CSV (RFC 4180 quoting) of rows that share their keys; the header is the first row's keys. */
export function toCsv(rows: readonly JsonRow[]): string {
  if (rows.length === 0) return "";
  const keys = Object.keys(rows[0]);
  const cell = (v: string | number | null | undefined): string => {
    if (v === null || v === undefined) return "";
    const s = String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [keys.join(","), ...rows.map((r) => keys.map((k) => cell(r[k])).join(","))];
  return lines.join("\n") + "\n";
}

export interface WrittenResults {
  json: string;
  csv: string;
}

/** results.json and results.csv in `dir` (created if missing), each written atomically. */
export function writeResults(dir: string, json: { [key: string]: JsonValue }): WrittenResults {
  mkdirSync(dir, { recursive: true });
  const jsonPath = path.join(dir, "results.json");
  const csvPath = path.join(dir, "results.csv");
  writeFileAtomic(jsonPath, JSON.stringify(json, null, 2) + "\n");
  writeFileAtomic(csvPath, toCsv(json.rows as JsonRow[]));
  return { json: jsonPath, csv: csvPath };
}
