/**
 * `kvsplit bench`: prompt and generation speed per K/V config and cache depth, optionally side by side with llama.cpp
 * (`--vs llama.cpp`, through the optional node-llama-cpp package). The method is in src/eval/bench.ts, the run order
 * and child processes in src/eval/bench-runner.ts. Prints a table (or one JSON object with --json); progress on stderr.
 */
import { availableParallelism } from "node:os";
import { Option, type Command } from "commander";
import { parseKvConfigList } from "../kv/shorthand.js";
import type { BenchEngine } from "../eval/bench.js";
import { importNodeLlamaCpp } from "../eval/bench-llamacpp.js";
import { benchTable, inspectBenchModel, llamaCppKvProblem, runBench } from "../eval/bench-runner.js";
import { UsageError } from "./errors.js";
import { addModelOption, addScheduleListOption, checkModelPath, intArg, log, scheduleConfigs, writeJson } from "./options.js";

export const DEFAULT_BENCH_CONFIGS = "F16,K8V8,K8V4,K4V8,K4V4";
export const DEFAULT_BENCH_DEPTHS = "512,2048";
const VS_ENGINES = ["llama.cpp"] as const;

interface BenchOptions {
  model: string;
  configs: string;
  depth: string;
  nPrompt: number;
  nGen: number;
  reps: number;
  ctxSize?: number;
  threads: number;
  vs?: (typeof VS_ENGINES)[number];
  kvSchedule?: string[];
  json?: boolean;
}

/** `512,2048` → [512, 2048]; every entry an integer >= 0. */
export function parseDepthList(list: string): number[] {
  const parse = intArg(0);
  return list.split(",").map((part) => {
    try {
      return parse(part);
    } catch {
      throw new UsageError(`--depth ${list}: '${part.trim()}' is not a cache depth; expected comma-separated integers >= 0 (e.g. 512,2048)`);
    }
  });
}

export function registerBench(program: Command): void {
  const cmd = program.command("bench").description("measure prompt and generation speed per K/V config and cache depth");
  addModelOption(cmd);
  cmd
    .option("--configs <list>", "K/V configs to measure, comma-separated", DEFAULT_BENCH_CONFIGS);
  addScheduleListOption(cmd)
    .option("--depth <list>", "tokens in the cache before generation is timed, comma-separated", DEFAULT_BENCH_DEPTHS)
    .option("-p, --n-prompt <n>", "tokens of the timed prompt batch (from an empty cache)", intArg(1), 512)
    .option("-n, --n-gen <n>", "tokens generated one at a time at each depth", intArg(1), 32)
    .option("--reps <n>", "repetitions per engine and config (medians reported)", intArg(1, 1000), 3)
    .option("-c, --ctx-size <n>", "context both engines allocate (default: just enough for the depths)", intArg(1))
    .option("-t, --threads <n>", "threads for both engines", intArg(1, 1024), availableParallelism())
    .addOption(new Option("--vs <engine>", "also measure this engine, alternating runs with kvsplit").choices(VS_ENGINES))
    .option("--json", "print one JSON object {rows: [{engine, config, depth, pp_tps, tg_tps, kv_bytes, rss_peak_bytes}], ...}")
    .action((opts: BenchOptions) => benchCommand(opts));
}

async function benchCommand(opts: BenchOptions): Promise<void> {
  // Everything the user typed is checked before any run starts.
  const depths = parseDepthList(opts.depth);
  const modelPath = checkModelPath(opts.model);
  const model = inspectBenchModel(modelPath);
  const configs = [...parseKvConfigList(opts.configs), ...scheduleConfigs(opts.kvSchedule, model.nLayers)];
  const engines: BenchEngine[] = opts.vs ? ["kvsplit", opts.vs] : ["kvsplit"];
  if (opts.vs === "llama.cpp") {
    for (const config of configs) {
      const problem = llamaCppKvProblem(config, model.headDim);
      if (problem) throw new UsageError(`${config.layers ? "--kv-schedule" : "--configs"} ${config.name}: ${problem}`);
    }
    await importNodeLlamaCpp();
  }

  log(
    `bench: ${modelPath}, ${configs.map((c) => c.name).join(" ")}, depths ${depths.join(" ")}, pp ${opts.nPrompt}, tg ${opts.nGen}, ` +
      `${opts.reps} reps, ${opts.threads} threads, engines ${engines.join(" and ")}`,
  );
  const report = await runBench(
    {
      modelPath, configs, depths, promptTokens: opts.nPrompt, genTokens: opts.nGen, reps: opts.reps, threads: opts.threads, engines,
      contextSize: opts.ctxSize,
    },
    log,
  );
  log(`bench: ${report.rows.length} rows from ${configs.length * opts.reps * engines.length} runs in ${report.seconds.toFixed(1)} s`);
  if (opts.json) {
    writeJson(report);
    return;
  }
  process.stdout.write(
    `${modelPath}: ${opts.threads} threads, context ${report.context_size}; medians of ${opts.reps} runs per engine ` +
      `(pp from an empty cache, the same on every depth row)\n\n${benchTable(report)}\n`,
  );
}
