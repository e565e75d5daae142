/**
 * Option parsing shared by the subcommands: number parsers that name the flag and the allowed range,
 * the model path, prompt text from -p or -f, the K/V flags, and llama.cpp's multi-letter short flags.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import type { KvPair } from "../api.js";
import { readGgufHeader } from "../gguf/reader.js";
import { checkScheduleLayers, readKvSchedule } from "../kv/schedule.js";
import { configOfSchedule, kvPairsOf, resolveKvFlags, type KvConfig } from "../kv/shorthand.js";
import { KV_FORMAT_NAMES } from "../formats/types.js";
import { configFromGguf } from "../model/config.js";
import { DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE } from "../model/defaults.js";
import { DEFAULT_SAMPLING, Sampler } from "../model/sampler.js";
import { InputFileError, UsageError } from "./errors.js";
import { CACHE_DIR_ENV, defaultCacheDir } from "../download/cache.js";
import { DownloadError } from "../download/download.js";
import { createDownloadReporter } from "../download/progress.js";
import { cachedModelPath, isRemoteModelSpec, ModelSpecError, resolveModelPath } from "../download/resolve.js";

/**
 * llama.cpp spells some short flags with several letters (`-ctk q8_0`), which commander cannot declare;
 * they are rewritten to their long names before parsing.
 */
const MULTI_LETTER_SHORT_FLAGS: ReadonlyMap<string, string> = new Map([
  ["-ctk", "--cache-type-k"],
  ["-ctv", "--cache-type-v"],
]);

export function expandMultiLetterShortFlags(argv: readonly string[]): string[] {
  return argv.map((arg) => {
    const eq = arg.indexOf("=");
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    const long = MULTI_LETTER_SHORT_FLAGS.get(flag);
    if (!long) return arg;
    return eq === -1 ? long : long + arg.slice(eq);
  });
}

/** A commander parser for an integer in [min, max]; the error names the allowed range. */
export function intArg(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = Number(value.trim());
    if (value.trim() === "" || !Number.isInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer ${rangeText(min, max)}`);
    }
    return n;
  };
}

/** A commander parser for a finite number in [min, max]. */
export function floatArg(min: number, max = Infinity): (value: string) => number {
  return (value) => {
    const n = Number(value.trim());
    if (value.trim() === "" || !Number.isFinite(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected a number ${rangeText(min, max)}`);
    }
    return n;
  };
}

function rangeText(min: number, max: number): string {
  if (max === Infinity || max === Number.MAX_SAFE_INTEGER) return `>= ${min}`;
  return `from ${min} to ${max}`;
}

/**
 * `-m, --model <path>` (required) and `--cache-dir <dir>`. An hf: spec or URL is downloaded (once, into the cache)
 * before the command's action runs, so the action sees a local path in `opts.model`.
 */
export function addModelOption(cmd: Command): Command {
  cmd.requiredOption("-m, --model <path>", "model: a .gguf file, hf:OWNER/REPO/FILE.gguf or an https:// URL (downloaded once into the cache)");
  return addModelDownloadSupport(cmd);
}

/**
 * For a command declaring its own `-m, --model`: add `--cache-dir` and resolve hf:/https specs to a cached local file
 * before the action runs (a preAction hook; the program must be run with parseAsync).
 */
export function addModelDownloadSupport(cmd: Command): Command {
  return cmd
    .option("--cache-dir <dir>", `where downloaded models are kept (default: ${CACHE_DIR_ENV} or ${defaultCacheDir()})`)
    .hook("preAction", resolveModelOptionHook);
}

/** preAction hook: replace an hf:/https `model` option value by the local path of its downloaded file. */
export async function resolveModelOptionHook(_hooked: Command, action: Command): Promise<void> {
  const spec: unknown = action.getOptionValue("model");
  if (typeof spec !== "string" || !isRemoteModelSpec(spec)) return;
  const cacheDir: unknown = action.getOptionValue("cacheDir");
  const reporter = createDownloadReporter(spec);
  try {
    const local = await resolveModelPath(spec, { onProgress: (p) => reporter.onProgress(p), cacheDir: typeof cacheDir === "string" ? cacheDir : undefined });
    action.setOptionValue("model", local);
  } catch (err) {
    // The user named something that is not there or not theirs: a bad argument (exit 2). Network trouble stays exit 1.
    if (err instanceof ModelSpecError) throw new UsageError(err.message);
    if (err instanceof DownloadError && (err.kind === "not-found" || err.kind === "unauthorized")) throw new UsageError(err.message);
    throw err;
  } finally {
    reporter.stop();
  }
}

/** `-p, --prompt <text>` and `-f, --file <path>`: exactly one of them gives the input text. */
export function addTextInputOptions(cmd: Command, what: string): Command {
  return cmd.option("-p, --prompt <text>", `${what} text`).option("-f, --file <path>", `read the ${what} text from a file`);
}

/** `--kv <config>`, `-ctk/--cache-type-k <format>`, `-ctv/--cache-type-v <format>`. */
export function addKvOptions(cmd: Command): Command {
  return cmd
    .option("--kv <config>", "K/V cache formats: F16, F32, K8V8, K8V4, K4V4, ... or q8_0/q4_0 (default F16)")
    .addOption(new Option("--cache-type-k <format>", `key cache format, also -ctk (${KV_FORMAT_NAMES.join(" ")})`))
    .addOption(new Option("--cache-type-v <format>", "value cache format, also -ctv"))
    .option("--kvq <bits>", "the original KVSplit's flag: both sides at 16 (f16), 8 (q8_0) or 4 (q4_0) bits")
    .option("--kvq-key <bits>", "the original KVSplit's flag: keys at 16, 8 or 4 bits")
    .option("--kvq-val <bits>", "the original KVSplit's flag: values at 16, 8 or 4 bits")
    .option("--kv-schedule <file>", "per-layer K/V formats from a JSON schedule (kvsplit tune writes one)")
    .option("--kv-window <n>", "keep each query's last N positions exact (f16); the rest in the K/V formats (default 0)", intArg(0))
    .option("--kv-sinks <n>", "keep the first N positions exact (f16) for every query (default 0)", intArg(0));
}

/** `--kv-schedule <file>` on commands that compare several configs: repeatable, each schedule adds one config. */
export function addScheduleListOption(cmd: Command): Command {
  return cmd.option(
    "--kv-schedule <file>",
    "also run a per-layer K/V schedule (JSON, e.g. from kvsplit tune); repeatable",
    (file: string, previous: string[] = []) => [...previous, file],
  );
}

/** The configs of the `--kv-schedule` files (none when the flag is absent), each checked against the model's layer count. */
export function scheduleConfigs(files: readonly string[] | undefined, nLayers: number): KvConfig[] {
  return (files ?? []).map((file) => {
    const config = configOfSchedule(readKvSchedule(file));
    checkScheduleLayers(config.layers!, nLayers, file);
    return config;
  });
}

/** `--no-kv-rotation`: `opts.kvRotation`, true unless given. */
export function addKvRotationOption(cmd: Command): Command {
  return cmd.option("--no-kv-rotation", "do not Hadamard-rotate quantized K/V (llama.cpp's LLAMA_ATTN_ROT_DISABLE)");
}

/** `-t, --threads <n>`: threads for the kernels (default: the runtime's choice). */
export function addThreadsOption(cmd: Command): Command {
  return cmd.option("-t, --threads <n>", "threads for the kernels", intArg(1, 1024));
}

/** `-b, --batch-size <n>`: tokens one forward pass takes (LoadOptions.batchSize; llama.cpp's -ub). */
export function addBatchSizeOption(cmd: Command): Command {
  return cmd.option("-b, --batch-size <n>", `tokens one forward pass takes: prompt batches, a server step (llama.cpp's -ub; default ${DEFAULT_BATCH_SIZE})`, intArg(1, MAX_BATCH_SIZE));
}

export interface KvOptionValues {
  kv?: string;
  cacheTypeK?: string;
  cacheTypeV?: string;
  kvSchedule?: string;
  kvWindow?: number;
  kvSinks?: number;
  kvq?: string;
  kvqKey?: string;
  kvqVal?: string;
}

/** `-t`, `-b`, the K/V flags and `--no-kv-rotation`: what a command that evaluates with a session takes, in that order. */
export function addSessionOptions(cmd: Command): Command {
  addThreadsOption(cmd);
  addBatchSizeOption(cmd);
  addKvOptions(cmd);
  return addKvRotationOption(cmd);
}

export interface SessionOptionValues extends KvOptionValues {
  threads?: number;
  batchSize?: number;
  kvRotation: boolean;
}

/**
 * What a session takes for `kv` on the model at modelPath: the one pair, or the schedule's layers, checked from the
 * GGUF header to be one per model layer (KvScheduleError naming the file otherwise) before anything is loaded.
 */
export function sessionKv(kv: KvConfig, modelPath: string): KvPair | readonly KvPair[] {
  if (kv.layers) checkScheduleLayers(kv.layers, modelLayerCount(modelPath), kv.scheduleFile ?? kv.name);
  return kvPairsOf(kv);
}

/** The model's layer count, from its GGUF header only. */
export function modelLayerCount(modelPath: string): number {
  return configFromGguf(readGgufHeader(modelPath)).nLayers;
}

export function kvConfigFromOptions(opts: KvOptionValues): KvConfig {
  return resolveKvFlags({ kv: opts.kv, ctk: opts.cacheTypeK, ctv: opts.cacheTypeV, schedule: opts.kvSchedule, window: opts.kvWindow, sinks: opts.kvSinks, kvq: opts.kvq, kvqKey: opts.kvqKey, kvqVal: opts.kvqVal });
}

/** The model path, checked to be an existing regular file (GGUF validity is the reader's job). */
export function checkModelPath(model: string): string {
  if (isRemoteModelSpec(model)) {
    // Commands with addModelOption / addModelDownloadSupport never get here with a remote spec (the hook resolved it).
    let cached: string;
    try {
      cached = cachedModelPath(model);
    } catch (err) {
      throw err instanceof ModelSpecError ? new UsageError(err.message) : err;
    }
    if (existsSync(cached)) return cached;
    throw new UsageError(`-m ${model}: this command does not download models yet and the file is not in the cache (${cached}); download it with kvsplit tokenize -m ${model} -p x, or pass a local .gguf path`);
  }
  checkReadableFile(model, "model file");
  return model;
}

function checkReadableFile(file: string, what: string): void {
  if (!existsSync(file)) throw new InputFileError(file, `${what} not found`);
  if (!statSync(file).isFile()) throw new InputFileError(file, `${what} is not a regular file`);
}

export interface TextInputValues {
  prompt?: string;
  file?: string;
}

/** The text of exactly one of -p TEXT or -f FILE (UTF-8). */
export function readTextInput(opts: TextInputValues): string {
  if (opts.prompt !== undefined && opts.file !== undefined) {
    throw new UsageError("give the text with -p TEXT or with -f FILE, not both");
  }
  if (opts.prompt !== undefined) return opts.prompt;
  if (opts.file !== undefined) {
    checkReadableFile(opts.file, "text file (-f)");
    try {
      return readFileSync(opts.file, "utf8");
    } catch (err) {
      throw new InputFileError(opts.file, `cannot read: ${(err as Error).message}`);
    }
  }
  throw new UsageError("no input text: give -p TEXT or -f FILE");
}

/** Print one JSON object as the only thing on stdout. */
export function writeJson(value: object): void {
  process.stdout.write(JSON.stringify(value) + "\n");
}

/** A line of progress or summary for people: always stderr, so stdout stays the command's output. */
export function log(line: string): void {
  process.stderr.write(line + "\n");
}

export function formatBytes(bytes: number): string {
  if (bytes >= 1024 * 1024 * 1024) return `${(bytes / 1024 ** 3).toFixed(2)} GiB`;
  if (bytes >= 1024 * 1024) return `${(bytes / 1024 ** 2).toFixed(2)} MiB`;
  if (bytes >= 1024) return `${(bytes / 1024).toFixed(2)} KiB`;
  return `${bytes} B`;
}

export interface SamplingOptionValues {
  temp: number;
  topK: number;
  topP: number;
  minP: number;
  seed: number;
  repeatPenalty: number;
  repeatLastN: number;
  presencePenalty: number;
  frequencyPenalty: number;
}

/** llama.cpp's sampling flags: --temp, --top-k, --top-p, --min-p, -s/--seed and the repetition penalties. */
export function addSamplingOptions(cmd: Command): Command {
  return cmd
    .option("--temp <t>", "temperature (0: greedy)", floatArg(0), DEFAULT_SAMPLING.temperature)
    .option("--top-k <k>", "keep the k most likely tokens (0: off)", intArg(0), DEFAULT_SAMPLING.topK)
    .option("--top-p <p>", "keep the smallest set with this total probability (1: off)", floatArg(0, 1), DEFAULT_SAMPLING.topP)
    .option("--min-p <p>", "drop tokens below p × the top probability (0: off)", floatArg(0, 1), DEFAULT_SAMPLING.minP)
    .option("-s, --seed <n>", "sampling seed (-1: random)", intArg(-1, 0xffffffff), -1)
    .option("--repeat-penalty <x>", "penalize tokens among the last --repeat-last-n (1: off)", floatArg(0), DEFAULT_SAMPLING.repeatPenalty)
    .option("--repeat-last-n <n>", "tokens the penalties look at (0: off, -1: the whole context)", intArg(-1), DEFAULT_SAMPLING.penaltyLastN)
    .option("--presence-penalty <x>", "subtract from the logit of every recent token (0: off)", floatArg(-2, 2), DEFAULT_SAMPLING.presencePenalty)
    .option("--frequency-penalty <x>", "subtract x × its recent count from each token's logit (0: off)", floatArg(-2, 2), DEFAULT_SAMPLING.frequencyPenalty);
}

export function samplerFromOptions(opts: SamplingOptionValues): Sampler {
  return new Sampler({
    temperature: opts.temp,
    topK: opts.topK,
    topP: opts.topP,
    minP: opts.minP,
    seed: opts.seed >= 0 ? opts.seed : undefined,
    repeatPenalty: opts.repeatPenalty,
    penaltyLastN: opts.repeatLastN,
    presencePenalty: opts.presencePenalty,
    frequencyPenalty: opts.frequencyPenalty,
  });
}

export interface ContextShiftValues {
  contextShift?: boolean;
  keep: number;
}

/** `--context-shift` and `--keep N` (llama.cpp's): shift the context when it fills instead of stopping. */
export function addContextShiftOptions(cmd: Command): Command {
  return cmd
    .option("--context-shift", "when the context fills, keep the first --keep tokens, drop half of the rest and go on (every K/V format; not with an exact window or keys per channel)")
    .option("--keep <n>", "tokens of the prompt kept by a context shift (after BOS, which is always kept)", intArg(0), 0);
}

/** The number of first tokens a shift keeps (BOS counted, as llama-server adds it), or undefined when shifting is off. */
export function contextShiftKeep(opts: ContextShiftValues, addsBos: boolean): number | undefined {
  return opts.contextShift ? opts.keep + (addsBos ? 1 : 0) : undefined;
}
