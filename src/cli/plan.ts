/**
 * `kvsplit plan`: how much context fits in a memory budget, or how much memory a context needs, per K/V config.
 * Reads only the model's GGUF header.
 */
import { Option, type Command } from "commander";
import { parseKvConfigList } from "../kv/shorthand.js";
import { parseByteSize, planRows, readPlanModel, type PlanRow } from "../eval/plan.js";
import { DEFAULT_COMPARE_CONFIGS } from "../eval/compare.js";
import { UsageError } from "./errors.js";
import { machineMemoryBytes } from "../model/memory.js";
import { loadSizing } from "../model/model.js";
import {
  addBatchSizeOption, addModelOption, addScheduleListOption, addThreadsOption, checkModelPath, formatBytes, intArg, scheduleConfigs, writeJson,
} from "./options.js";

interface PlanOptions {
  model: string;
  memory?: string;
  ctxSize?: number;
  configs: string;
  kvSchedule?: string[];
  threads?: number;
  batchSize?: number;
  json?: boolean;
}

export function registerPlan(program: Command): void {
  const cmd = program.command("plan").description("KV memory per config: the longest context in a memory budget, or the bytes a context needs");
  addModelOption(cmd);
  cmd
    .addOption(new Option("--memory <size>", "memory budget for weights + KV cache + scratch, e.g. 8GiB").conflicts("ctxSize"))
    .option("-c, --ctx-size <n>", "context length in tokens", intArg(1))
    .option("--configs <list>", "K/V configs, comma-separated (F16, K8V4, q5_1/q5_1, ...)", DEFAULT_COMPARE_CONFIGS);
  addScheduleListOption(cmd);
  addThreadsOption(cmd);
  addBatchSizeOption(cmd)
    .option("--json", "print one JSON object: {model, rows: [...]}")
    .action((opts: PlanOptions) => planCommand(opts));
}

function planCommand(opts: PlanOptions): void {
  if ((opts.memory === undefined) === (opts.ctxSize === undefined)) {
    throw new UsageError("give exactly one of --memory SIZE (e.g. 8GiB) or -c CONTEXT_TOKENS");
  }
  let target: { memory: number } | { ctx: number };
  try {
    target = opts.memory !== undefined ? { memory: parseByteSize(opts.memory) } : { ctx: opts.ctxSize! };
  } catch (err) {
    throw new UsageError(`--memory: ${(err as Error).message}`);
  }
  const configs = parseKvConfigList(opts.configs);
  const modelPath = checkModelPath(opts.model);
  const model = readPlanModel(modelPath);
  const { threads, batchSize } = loadSizing(opts); // the scratch as `run -t T -b B` would size it
  const rows = planRows(model, [...configs, ...scheduleConfigs(opts.kvSchedule, model.config.nLayers)], target, { threads, batchTokens: batchSize });
  if (opts.json) {
    writeJson({ model: modelPath, weights_bytes: model.weightsBytes, threads, batch_size: batchSize, rows });
    return;
  }
  const c = model.config;
  process.stdout.write(
    `${modelPath}: ${c.nLayers} layers × ${c.nKvHeads} kv heads × head_dim ${c.headDim}; weights ${formatBytes(model.weightsBytes)}; ` +
      `trained context ${c.contextLength}; scratch for ${threads} thread${threads === 1 ? "" : "s"} and ${batchSize}-token batches (-t, -b)\n\n`,
  );
  const header = ["config", "K", "V", "bytes/token", "memory" in target ? "max context" : `KV @${(target as { ctx: number }).ctx}`];
  if (!("memory" in target)) header.push("total", `fits in ${formatBytes(machineMemoryBytes())}`);
  header.push("memories");
  const lines = rows.map((r) => cells(r, target));
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => l[i].length)));
  const fmt = (l: string[]) => l.map((x, i) => (i < 3 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join("  ");
  process.stdout.write([fmt(header), widths.map((w) => "-".repeat(w)).join("  "), ...lines.map(fmt)].join("\n") + "\n");
  if ("memory" in target) {
    process.stdout.write("\nmax context counts weights + KV cache + scratch within the budget; memories: WebAssembly memories of at most 4 GiB.\n");
    if (rows.some((r) => r.beyond_trained)) {
      process.stdout.write(`* past the model's trained context (${c.contextLength} tokens): quality beyond it is not what the model was trained for.\n`);
    }
  } else if ("ctx" in target && target.ctx > c.contextLength) {
    process.stdout.write(`\n-c ${target.ctx} is past the model's trained context (${c.contextLength} tokens).\n`);
  }
}

function cells(r: PlanRow, target: { memory: number } | { ctx: number }): string[] {
  const base = [r.config, r.k, r.v, String(r.kv_bytes_per_token)];
  if ("memory" in target) return [...base, `${r.max_ctx}${r.beyond_trained ? "*" : ""}`, String(r.shards)];
  return [...base, formatBytes(r.bytes!), formatBytes(r.total_bytes!), r.fits ? "yes" : "no", String(r.shards)];
}
