/**
 * `kvsplit compare`: the K/V comparison table (eval/compare.ts) on the terminal, results.json, results.csv and the
 * plots in --out. Without -m it runs the embedded default job (eval/default-job.ts) and says what that can show.
 */
import path from "node:path";
import type { Command } from "commander";
import { loadModel, type Model } from "../index.js";
import { parseKvConfigList } from "../kv/shorthand.js";
import {
  COMPARE_BUDGET_SECONDS, DEFAULT_COMPARE_CONFIGS, chunksForBudget, parseSweep, planConfigs, runCompare, type CompareResult, type SpeedOptions,
  type SweepSide,
} from "../eval/compare.js";
import { prepareDefaultJob } from "../eval/default-job.js";
import { prepareEvalText, runPerplexity, type EvalText } from "../eval/perplexity.js";
import { createProgress, formatDuration } from "../report/progress.js";
import { compareJson, writeResults } from "../report/results.js";
import { writeComparePlots } from "../report/plots.js";
import { compareLegend, compareTable } from "../report/table.js";
import { UsageError } from "./errors.js";
import { addCtxOption, asCliError, DEFAULT_PERPLEXITY_CTX } from "./perplexity.js";
import { addKvRotationOption, addModelDownloadSupport, addScheduleListOption, addBatchSizeOption, addThreadsOption, checkModelPath, intArg, log, modelLayerCount, readTextInput, scheduleConfigs, writeJson } from "./options.js";

export const DEFAULT_OUT_DIR = "kvsplit-results";

interface CompareOptions {
  model?: string;
  file?: string;
  configs: string;
  ctxSize?: number;
  chunks?: number | "all";
  out: string;
  sweep?: string;
  kvSchedule?: string[];
  sensitivity: boolean;
  kvRotation: boolean;
  threads?: number;
  batchSize?: number;
  speedPrompt: number;
  speedGen: number;
  speedReps: number;
  plots: boolean;
  json?: boolean;
}

export function registerCompare(program: Command): void {
  const cmd = program
    .command("compare")
    .description("compare K/V cache configurations: memory, speed, perplexity and KL divergence against an f32 cache, with plots")
    .option("-m, --model <path>", "model file (.gguf); default: a small trained model shipped with kvsplit (tinystories-2m-hd64)")
    .option("-f, --file <path>", "evaluation text (default: a short text shipped with kvsplit)")
    .option("--configs <list>", "K/V configs, comma-separated (F16, K8V4, q5_1/q5_1, K4V4+w16, K3V3+w16, ...; presets: llama.cpp, windows, lowbit, e8)", DEFAULT_COMPARE_CONFIGS);
  addCtxOption(cmd);
  cmd
    .option("--chunks <n|all>", `chunks to evaluate (default: as many as finish in about ${COMPARE_BUDGET_SECONDS} s; all: every chunk that fits)`, chunksArg)
    .option("--out <dir>", "folder for results.json, results.csv and the plots", DEFAULT_OUT_DIR)
    .option("--sweep <sides>", "also vary k, v or k,v through every KV format with the other side f16");
  addScheduleListOption(cmd)
    .option("--no-sensitivity", "skip the keys-only / values-only rows at 8 and 4 bits");
  addKvRotationOption(cmd);
  addThreadsOption(cmd);
  addBatchSizeOption(cmd);
  cmd
    .option("--speed-prompt <n>", "prompt tokens of each timed run", intArg(1), 128)
    .option("--speed-gen <n>", "single-token evaluations of each timed run", intArg(0), 32)
    .option("--speed-reps <n>", "timed runs per config (the fastest is reported)", intArg(1, 100), 3)
    .option("--no-plots", "write results.json and results.csv only")
    .option("--json", "print one JSON object on stdout (the same as results.json)")
    .action((opts: CompareOptions) => compareCommand(opts));
  addModelDownloadSupport(cmd); // -m hf:... and https URLs are downloaded before the action runs
}

async function compareCommand(opts: CompareOptions): Promise<void> {
  // Everything the user typed is checked before anything heavy runs.
  const configs = parseKvConfigList(opts.configs);
  let sweep: SweepSide[] = [];
  if (opts.sweep !== undefined) {
    try {
      sweep = parseSweep(opts.sweep);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  const outDir = path.resolve(opts.out);

  const embedded = opts.model === undefined;
  let modelPath: string;
  let text: string;
  let textLabel: string;
  const notes: string[] = [];
  if (embedded) {
    const job = prepareDefaultJob();
    modelPath = job.modelPath;
    notes.push(...job.notes);
    text = opts.file !== undefined ? readTextInput({ file: opts.file }) : job.text;
    textLabel = opts.file ?? job.textPath;
  } else {
    modelPath = checkModelPath(opts.model!);
    if (opts.file !== undefined) {
      text = readTextInput({ file: opts.file });
      textLabel = opts.file;
    } else {
      const job = prepareDefaultJob();
      text = job.text;
      textLabel = job.textPath;
      notes.push(`No -f given: evaluated on the short text shipped with kvsplit (${job.textPath}); give -f TEXT for your own.`);
    }
  }

  const plan = planConfigs([...configs, ...scheduleConfigs(opts.kvSchedule, modelLayerCount(modelPath))], { sensitivity: opts.sensitivity, sweep });
  const model = loadModel(modelPath, { threads: opts.threads, batchSize: opts.batchSize });
  try {
    const ctx = opts.ctxSize ?? Math.min(DEFAULT_PERPLEXITY_CTX, model.config.contextLength);
    const speed: SpeedOptions = { promptTokens: opts.speedPrompt, genTokens: opts.speedGen, reps: opts.speedReps };
    const allChunks = asCliError(() => prepareEvalText(model, text, ctx, typeof opts.chunks === "number" ? opts.chunks : undefined));
    const evalText = opts.chunks === undefined ? budgetedChunks(model, allChunks, plan.length, speed, opts.kvRotation) : allChunks;
    const nChunks = evalText.chunks.length;
    log(
      `compare: ${path.basename(modelPath)}${embedded ? " (embedded default)" : ""}, ${nChunks} chunks of ${ctx} tokens, ` +
        `f32 baseline + ${plan.length} configs: ${plan.map((p) => p.name).join(", ")}`,
    );
    if (nChunks < allChunks.chunks.length) {
      log(`compare: ${nChunks} of the ${allChunks.chunks.length} chunks that fit, to finish in about ${COMPARE_BUDGET_SECONDS} s (--chunks all: every chunk, about ${formatDuration((COMPARE_BUDGET_SECONDS * allChunks.chunks.length) / nChunks)})`);
    }
    const progress = createProgress((plan.length + 1) * nChunks);
    let result;
    try {
      result = runCompare(model, evalText, {
        plan,
        rotation: opts.kvRotation,
        speed,
        onProgress: (p) => {
          if (p.phase === "chunk") progress.update(p.index * nChunks + p.done, `${p.config} (${p.index + 1}/${p.total})`);
          else progress.log(`${p.config}: done in ${p.seconds.toFixed(1)} s`);
        },
        // results.json / results.csv hold every finished config, so an interrupted run keeps them
        onResult: (partial: CompareResult) => writeResults(outDir, compareJson(partial, { embedded, notes, textLabel })),
      });
    } finally {
      progress.stop();
    }

    const json = compareJson(result, { embedded, notes, textLabel });
    const written = writeResults(outDir, json);
    const plots = opts.plots ? await writeComparePlots(result, outDir) : [];

    if (opts.json) {
      writeJson(json);
      for (const n of notes) log(n);
    } else {
      const lines = [
        `kvsplit compare: ${modelPath}${embedded ? " (embedded default)" : ""}; text ${textLabel}`,
        "",
        compareTable(result),
        "",
        ...compareLegend(result),
      ];
      if (notes.length > 0) lines.push("", ...notes);
      process.stdout.write(lines.join("\n") + "\n");
    }
    log(`wrote ${written.json} and ${written.csv}`);
    for (const p of plots) log(`wrote ${p.png} and .svg: ${p.title}`);
  } finally {
    model.dispose();
  }
}

/** `--chunks`: a positive integer or "all". */
function chunksArg(value: string): number | "all" {
  return value.trim() === "all" ? "all" : intArg(1)(value);
}

/** The first chunks of evalText that finish the baseline and nConfigs configs in about COMPARE_BUDGET_SECONDS: one F32 chunk is timed. */
function budgetedChunks(model: Model, evalText: EvalText, nConfigs: number, speed: SpeedOptions, rotation: boolean): EvalText {
  if (evalText.chunks.length === 1) return evalText;
  const probe = runPerplexity(model, { ...evalText, chunks: evalText.chunks.slice(0, 1) }, { kv: { k: "f32", v: "f32" }, rotation });
  const n = chunksForBudget({ available: evalText.chunks.length, nConfigs, chunkMs: probe.ms, ctx: evalText.ctx, speed, budgetSeconds: COMPARE_BUDGET_SECONDS });
  return { ...evalText, chunks: evalText.chunks.slice(0, n) };
}
