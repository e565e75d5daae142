/**
 * Runs a benchmark plan: for each K/V config, `reps` repetitions alternating the engines run by run (kvsplit rep 1,
 * llama.cpp rep 1, kvsplit rep 2, ...), each run in a fresh child process (bench-child.ts) so that its peak RSS is
 * its own and no run inherits another's heap, JIT state or page cache warmth beyond the file cache.
 * Results are medians over the repetitions; rss_peak_bytes is the largest peak of the runs behind a row.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { readGgufHeader } from "../gguf/reader.js";
import { getKvFormat, isOwnFormat } from "../formats/table.js";
import type { KvConfig } from "../kv/shorthand.js";
import { configFromGguf, type ModelConfig } from "../model/config.js";
import { benchContextSize, median, type BenchEngine, type BenchJob, type BenchRunResult } from "./bench.js";
import type { BenchChildMessage } from "./bench-child.js";

export interface BenchPlan {
  modelPath: string;
  configs: KvConfig[];
  /** Cache depths before generation (sorted and deduplicated by runBench). */
  depths: number[];
  promptTokens: number;
  genTokens: number;
  reps: number;
  threads: number;
  /** Engines in the order they alternate; "kvsplit" alone or with "llama.cpp". */
  engines: BenchEngine[];
  /** Seed of the token sequence (default 1). */
  seed?: number;
  /** Context both engines allocate (default: just enough for the depths, benchContextSize); must hold the runs. */
  contextSize?: number;
  /**
   * Run order: "config" (default) runs every rep of a config before the next; "rep" runs every config once per rep
   * (rep 1 of each, then rep 2, ...), so a slow stretch of the machine falls on every config alike.
   */
  order?: "config" | "rep";
}

/** One row of `kvsplit bench --json` (DESIGN.md section 4), plus the runs behind the medians. */
export interface BenchRow {
  engine: BenchEngine;
  config: string;
  k: string;
  v: string;
  depth: number;
  /** Prompt batch tokens/s from an empty cache: the same measurement on every depth row of a config. */
  pp_tps: number;
  tg_tps: number;
  kv_bytes: number;
  rss_peak_bytes: number;
  context_size: number;
  /** Runs behind each median. */
  runs: number;
  pp_tps_runs: number[];
  tg_tps_runs: number[];
}

export interface BenchReport {
  model: string;
  threads: number;
  prompt_tokens: number;
  gen_tokens: number;
  reps: number;
  depths: number[];
  context_size: number;
  engines: BenchEngine[];
  rows: BenchRow[];
  seconds: number;
}

/** The model's shape, read from the GGUF header only (bad files fail here, before any run starts). */
export function inspectBenchModel(modelPath: string): ModelConfig {
  return configFromGguf(readGgufHeader(modelPath));
}

/**
 * Why llama.cpp cannot hold `config` for this model, or null: llama.cpp views each head's slice of a K/V row, so a
 * quantized format needs head_dim to be a whole number of its blocks (kvsplit itself has no such limit).
 */
export function llamaCppKvProblem(config: KvConfig, headDim: number): string | null {
  if (config.layers || config.k === "mixed" || config.v === "mixed") return "llama.cpp has one K/V type for every layer, not a per-layer schedule; bench it without --vs";
  if (config.window || config.sinks) return "llama.cpp keeps no exact window or sinks; bench it without --vs";
  if (config.keysPerChannel) return "llama.cpp stores keys per position, not per channel; bench it without --vs";
  for (const [side, name] of [["K", config.k], ["V", config.v]] as const) {
    const format = getKvFormat(name);
    if (isOwnFormat(format)) return `${name} is kvsplit's own format (llama.cpp has no ${side} cache type like it); bench it without --vs`;
    if (headDim % format.blockSize !== 0) {
      return `llama.cpp cannot store ${side} as ${name} for this model: head_dim ${headDim} is not a multiple of its ${format.blockSize}-value blocks`;
    }
  }
  return null;
}

const CHILD_SCRIPT = fileURLToPath(new URL("./bench-child.js", import.meta.url));

/** Run one job in a fresh process; its stdout is passed to our stderr so our stdout stays the command's output. */
export function runJobInChild(job: BenchJob): Promise<BenchRunResult> {
  return new Promise((resolve, reject) => {
    const child = fork(CHILD_SCRIPT, [JSON.stringify(job)], { stdio: ["ignore", "pipe", "inherit", "ipc"] });
    child.stdout?.pipe(process.stderr, { end: false });
    let answer: BenchChildMessage | undefined;
    child.on("message", (m) => {
      answer = m as BenchChildMessage;
    });
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      if (answer?.ok) return resolve(answer.result);
      if (answer) {
        const err = new Error(`${job.engine} ${job.config}: ${answer.message}`);
        err.name = answer.name; // keeps the CLI's exit code (2 for bad input, 1 otherwise)
        return reject(err);
      }
      reject(new Error(`the ${job.engine} run for ${job.config} ended without a result (${signal ? `signal ${signal}` : `exit code ${code}`})`));
    });
  });
}

function tpsText(tps: number): string {
  return tps >= 100 ? tps.toFixed(0) : tps.toFixed(1);
}

/** Run the plan; `onProgress` gets one line per finished run. */
export async function runBench(plan: BenchPlan, onProgress: (line: string) => void = () => {}): Promise<BenchReport> {
  const started = performance.now();
  const model = inspectBenchModel(plan.modelPath);
  const depths = [...new Set(plan.depths)].sort((a, b) => a - b);
  const needed = benchContextSize(depths, plan.promptTokens, plan.genTokens);
  if (plan.contextSize !== undefined && plan.contextSize < needed) {
    throw new RangeError(`context ${plan.contextSize} cannot hold the runs: depth ${Math.max(...depths)} + ${plan.genTokens} generated tokens need ${needed}`);
  }
  const contextSize = plan.contextSize ?? needed;
  const totalRuns = plan.configs.length * plan.reps * plan.engines.length;
  const rows: BenchRow[] = [];
  let runIndex = 0;

  // runs[config index] per engine, filled in the plan's order
  const runs = plan.configs.map(() => new Map<BenchEngine, BenchRunResult[]>(plan.engines.map((e) => [e, []])));
  const reps = Array.from({ length: plan.reps }, (_, i) => i + 1);
  const order: Array<[number, number]> = plan.order === "rep" // (config index, rep)
    ? reps.flatMap((rep) => plan.configs.map((_, ci): [number, number] => [ci, rep]))
    : plan.configs.flatMap((_, ci) => reps.map((rep): [number, number] => [ci, rep]));
  for (const [ci, rep] of order) {
    const config = plan.configs[ci]!;
    for (const engine of plan.engines) {
      const job: BenchJob = {
        engine,
        modelPath: plan.modelPath,
        config: config.name,
        k: config.k,
        v: config.v,
        ...(config.layers ? { layers: config.layers } : {}),
        ...(config.window ? { window: config.window } : {}),
        ...(config.sinks ? { sinks: config.sinks } : {}),
        ...(config.exactFormat ? { exactFormat: config.exactFormat } : {}),
        ...(config.keysPerChannel ? { kLayout: "channel" as const } : {}),
        depths,
        promptTokens: plan.promptTokens,
        genTokens: plan.genTokens,
        threads: plan.threads,
        contextSize,
        nVocab: model.nVocab,
        nLayers: model.nLayers,
        kvDim: model.kvDim,
        seed: plan.seed ?? 1,
      };
      const runStarted = performance.now();
      const result = await runJobInChild(job);
      runs[ci]!.get(engine)!.push(result);
      runIndex++;
      const tg = depths.map((d, i) => `${tpsText(result.tgTps[i]!)} @${d}`).join(", ");
      const seconds = ((performance.now() - runStarted) / 1000).toFixed(1);
      const elapsed = (performance.now() - started) / 1000;
      const eta = Math.round((elapsed / runIndex) * (totalRuns - runIndex));
      onProgress(
        `run ${runIndex}/${totalRuns}: ${engine} ${config.name} rep ${rep}/${plan.reps}: pp ${tpsText(result.ppTps)} t/s, tg ${tg} t/s ` +
          `(${seconds} s; ETA ${Math.floor(eta / 60)} min ${eta % 60} s)`,
      );
    }
  }
  for (const [ci, config] of plan.configs.entries()) {
    for (let d = 0; d < depths.length; d++) {
      for (const engine of plan.engines) {
        const engineRuns = runs[ci]!.get(engine)!;
        const ppRuns = engineRuns.map((r) => r.ppTps);
        const tgRuns = engineRuns.map((r) => r.tgTps[d]!);
        rows.push({
          engine,
          config: config.name,
          k: config.k,
          v: config.v,
          depth: depths[d]!,
          pp_tps: median(ppRuns),
          tg_tps: median(tgRuns),
          kv_bytes: engineRuns[0]!.kvBytes,
          rss_peak_bytes: Math.max(...engineRuns.map((r) => r.rssPeakBytes)),
          context_size: engineRuns[0]!.contextSize,
          runs: engineRuns.length,
          pp_tps_runs: ppRuns,
          tg_tps_runs: tgRuns,
        });
      }
    }
  }
  return {
    model: plan.modelPath,
    threads: plan.threads,
    prompt_tokens: plan.promptTokens,
    gen_tokens: plan.genTokens,
    reps: plan.reps,
    depths,
    context_size: contextSize,
    engines: [...plan.engines],
    rows,
    seconds: (performance.now() - started) / 1000,
  };
}

/** kvsplit's value over llama.cpp's for the same config, depth and measure, or null without a llama.cpp row. */
export function benchRatio(report: BenchReport, config: string, depth: number, measure: "pp_tps" | "tg_tps"): number | null {
  const ours = report.rows.find((r) => r.engine === "kvsplit" && r.config === config && r.depth === depth);
  const theirs = report.rows.find((r) => r.engine === "llama.cpp" && r.config === config && r.depth === depth);
  if (!ours || !theirs || !(theirs[measure] > 0)) return null;
  return ours[measure] / theirs[measure];
}

function mib(bytes: number): string {
  return (bytes / 1024 ** 2).toFixed(2);
}

/**
 * A markdown table, one line per config × depth: each engine's pp and tg tokens/s (medians), the kvsplit/llama.cpp
 * ratio, KV MiB, peak RSS MiB and the runs behind each median.
 */
export function benchTable(report: BenchReport): string {
  const vs = report.engines.includes("llama.cpp");
  const pp = `pp${report.prompt_tokens}`;
  const tg = `tg${report.gen_tokens}`;
  const header = vs
    ? ["config", "depth", `kvsplit ${pp} t/s`, `llama.cpp ${pp} t/s`, `${pp} ratio`, `kvsplit ${tg} t/s`, `llama.cpp ${tg} t/s`, `${tg} ratio`,
       "KV MiB (kvsplit / llama.cpp)", "peak RSS MiB (kvsplit / llama.cpp)", "runs"]
    : ["config", "depth", `${pp} t/s`, `${tg} t/s`, "KV MiB", "peak RSS MiB", "runs"];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`];
  const seen = new Set<string>();
  for (const row of report.rows) {
    const key = `${row.config}@${row.depth}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const ours = report.rows.find((r) => r.engine === "kvsplit" && r.config === row.config && r.depth === row.depth)!;
    if (!vs) {
      lines.push(`| ${row.config} | ${row.depth} | ${tpsText(ours.pp_tps)} | ${tpsText(ours.tg_tps)} | ${mib(ours.kv_bytes)} | ${mib(ours.rss_peak_bytes)} | ${ours.runs} |`);
      continue;
    }
    const theirs = report.rows.find((r) => r.engine === "llama.cpp" && r.config === row.config && r.depth === row.depth)!;
    const ratio = (m: "pp_tps" | "tg_tps"): string => {
      const r = benchRatio(report, row.config, row.depth, m);
      return r === null ? "n/a" : `${r.toFixed(2)}×`;
    };
    lines.push(
      `| ${row.config} | ${row.depth} | ${tpsText(ours.pp_tps)} | ${tpsText(theirs.pp_tps)} | ${ratio("pp_tps")} ` +
        `| ${tpsText(ours.tg_tps)} | ${tpsText(theirs.tg_tps)} | ${ratio("tg_tps")} ` +
        `| ${mib(ours.kv_bytes)} / ${mib(theirs.kv_bytes)} | ${mib(ours.rss_peak_bytes)} / ${mib(theirs.rss_peak_bytes)} ` +
        `| ${ours.runs} / ${theirs.runs} |`,
    );
  }
  return lines.join("\n");
}
