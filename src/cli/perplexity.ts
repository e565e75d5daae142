/**
 * `kvsplit perplexity`: llama-perplexity's measurement with a chosen K/V cache (eval/perplexity.ts), optionally saving
 * the run's distributions as a KL-divergence base (--kl-divergence-base FILE) or comparing against a saved base
 * (--kl-divergence FILE). Results on stdout (one JSON object with --json), progress on stderr.
 */
import path from "node:path";
import type { Command } from "commander";
import { loadModel, type Model } from "../index.js";
import { PerplexityCheckpoint } from "../eval/perplexity-checkpoint.js";
import { existsSync } from "node:fs";
import { BaselineDistributions, checkBaseMatches, KldFileError, readKldBase, writeKldBase, type KldBaseFile, type KldBaseKv } from "../eval/kld-file.js";
import { exactOptions, type KvConfig } from "../kv/shorthand.js";
import { checkContext, EvalInputError, prepareEvalText, runPerplexity, sha256Hex, type EvalText, type PerplexityRunResult } from "../eval/perplexity.js";
import { kvBitsPerValue } from "../kv/cache.js";
import { createProgress } from "../report/progress.js";
import { formatSigned } from "../report/table.js";
import { InputFileError, UsageError } from "./errors.js";
import {
  addModelOption,
  addSessionOptions,
  checkModelPath,
  formatBytes,
  intArg,
  kvConfigFromOptions,
  sessionKv,
  log,
  readTextInput,
  writeJson,
  type SessionOptionValues,
} from "./options.js";

/** llama-perplexity's default chunk size. */
export const DEFAULT_PERPLEXITY_CTX = 512;

interface PerplexityOptions extends SessionOptionValues {
  model: string;
  file?: string;
  ctxSize?: number;
  chunks?: number;
  klDivergenceBase?: string;
  klDivergence?: string;
  checkpoint?: string;
  checkpointEvery: number;
  json?: boolean;
}

/** `-c, --ctx-size <n>`: the chunk size of llama-perplexity's method. */
export function addCtxOption(cmd: Command): Command {
  return cmd.option("-c, --ctx-size <n>", `chunk size in tokens (default ${DEFAULT_PERPLEXITY_CTX}, at most the model's trained context)`, intArg(2));
}

/** `-c, --ctx-size <n>` and `--chunks <n>`: the chunking of llama-perplexity's method. */
export function addChunkOptions(cmd: Command): Command {
  return addCtxOption(cmd).option("--chunks <n>", "evaluate at most this many chunks (default: all that fit)", intArg(1));
}

export function registerPerplexity(program: Command): void {
  const cmd = program.command("perplexity").description("perplexity of a text (llama-perplexity's method), and KL divergence against a saved base");
  addModelOption(cmd);
  cmd.option("-f, --file <path>", "text to evaluate (optional with --kl-divergence: the base file holds the tokens)");
  addChunkOptions(cmd);
  addSessionOptions(cmd);
  cmd
    .option("--kl-divergence-base <file>", "save this run's per-position distributions to FILE (run it with --kv F32 for a reference)")
    .option("--kl-divergence <file>", "compare this run against the distributions saved in FILE: KL divergence, same top token, Δppl")
    .option("--checkpoint <file>", "write the run's progress and KV state to FILE every few minutes, and resume from FILE when it exists (long contexts)")
    .option("--checkpoint-every <seconds>", "seconds between checkpoints", intArg(1), 300)
    .option("--json", "print one JSON object on stdout")
    .action((opts: PerplexityOptions) => perplexityCommand(opts));
}

function perplexityCommand(opts: PerplexityOptions): void {
  const kv = kvConfigFromOptions(opts);
  if (opts.klDivergenceBase !== undefined && opts.klDivergence !== undefined) {
    throw new UsageError("--kl-divergence-base FILE (save a base) and --kl-divergence FILE (compare with one) exclude each other");
  }
  if (opts.klDivergence === undefined && opts.file === undefined) throw new UsageError("no text: give -f FILE");
  if (opts.checkpoint !== undefined && (opts.klDivergence !== undefined || opts.klDivergenceBase !== undefined)) {
    throw new UsageError("--checkpoint covers perplexity runs only, not --kl-divergence or --kl-divergence-base");
  }
  const text = opts.file !== undefined ? readTextInput({ file: opts.file }) : undefined;
  const modelPath = checkModelPath(opts.model);
  const baseFile: KldBaseFile | undefined = opts.klDivergence !== undefined ? asCliError(() => readKldBase(opts.klDivergence!)) : undefined;

  const pairs = sessionKv(kv, modelPath);
  const model = loadModel(modelPath, { threads: opts.threads, batchSize: opts.batchSize, session: opts.ctxSize ? { contextSize: opts.ctxSize, kv: pairs, ...exactOptions(kv) } : undefined });
  try {
    const evalText = asCliError(() => evalTextFor(model, text, opts, baseFile));
    const nVocab = model.config.nVocab;
    const record = opts.klDivergenceBase !== undefined ? new BaselineDistributions(nVocab, evalText.ctx, evalText.chunks.length) : undefined;
    log(
      `perplexity: ${path.basename(modelPath)}, ${evalText.chunks.length} chunks of ${evalText.ctx} tokens (text: ${evalText.nTextTokens} tokens), ` +
        `kv ${kv.name} (k=${kv.k} v=${kv.v}), rotation ${opts.kvRotation ? "on" : "off"}`,
    );
    if (evalText.ctx > model.config.contextLength) {
      log(`warning: the context (${evalText.ctx} tokens) is longer than the model was trained on (${model.config.contextLength}): past that, positions it never saw can make the output degrade`);
    }
    if (opts.checkpoint !== undefined && existsSync(opts.checkpoint)) log(`perplexity: resuming from the checkpoint ${opts.checkpoint}`);
    // progress in tokens, batch by batch: a long chunk (a 32K context) shows its ETA too
    const progress = createProgress(evalText.chunks.length * evalText.ctx);
    let result: PerplexityRunResult;
    try {
      result = asCliError(() =>
        runPerplexity(model, evalText, {
          kv: pairs,
          ...exactOptions(kv),
          rotation: opts.kvRotation,
          baseline: baseFile?.base,
          record,
          checkpoint: opts.checkpoint === undefined ? undefined : new PerplexityCheckpoint(
            opts.checkpoint,
            { textSha256: evalText.textSha256, ctx: evalText.ctx, nChunks: evalText.chunks.length, kv: JSON.stringify({ layers: pairs, ...exactOptions(kv), rotation: opts.kvRotation }) },
            opts.checkpointEvery * 1000,
          ),
          onTokens: (done, total) => progress.update(done, `chunk ${Math.ceil(done / evalText.ctx)}/${evalText.chunks.length}, ${done}/${total} tokens`),
        }),
      );
    } finally {
      progress.stop();
    }
    if (record && opts.klDivergenceBase !== undefined) {
      const identity = { model: modelIdentity(model), kv: kvIdentity(kv), rotation: result.rotation };
      writeKldBase(opts.klDivergenceBase, record, identity, evalText, result.ppl);
      log(`saved the KL-divergence base (${record.storage} storage, ${record.nPositions} positions) to ${opts.klDivergenceBase}`);
    }
    report(result, evalText, model, opts, kv);
  } finally {
    model.dispose();
  }
}

/** The chunks to evaluate: from the text, or from the base file's tokens (checked against each other when both). */
function evalTextFor(model: Model, text: string | undefined, opts: PerplexityOptions, baseFile: KldBaseFile | undefined): EvalText {
  if (!baseFile) return prepareEvalText(model, text!, opts.ctxSize ?? Math.min(DEFAULT_PERPLEXITY_CTX, model.config.contextLength), opts.chunks);
  const { header, base } = baseFile;
  const file = opts.klDivergence!;
  checkContext(model, header.ctx);
  const notes = checkBaseMatches(file, header, {
    nVocab: model.config.nVocab,
    modelName: modelIdentity(model).name,
    textSha256: text !== undefined ? sha256Hex(text) : undefined,
    ctx: opts.ctxSize,
    chunks: opts.chunks,
  });
  for (const n of notes) log(`note: ${n}`);
  const nChunks = Math.min(opts.chunks ?? header.n_chunks, header.n_chunks);
  const stored = base.chunkTokens().slice(0, nChunks);
  if (text !== undefined) {
    const ours = prepareEvalText(model, text, header.ctx, nChunks);
    const differs = ours.chunks.findIndex((chunk, c) => chunk.some((t, i) => t !== stored[c][i]));
    if (differs >= 0) throw new KldFileError(file, `chunk ${differs} of the text tokenizes differently from the base's tokens: a different tokenizer`);
  }
  return { textSha256: header.text_sha256, nTextTokens: header.n_text_tokens, ctx: header.ctx, chunks: stored };
}

function modelIdentity(model: Model): { name: string; n_vocab: number; n_layers: number; dim: number } {
  const general = model.gguf.metadata.get("general.name");
  const name = typeof general === "string" && general !== "" ? general : path.basename(model.path);
  return { name, n_vocab: model.config.nVocab, n_layers: model.config.nLayers, dim: model.config.dim };
}

/** The K/V formats as the JSON output and the base file's header record them. */
function kvIdentity(kv: KvConfig): KldBaseKv {
  return { k: kv.k, v: kv.v, ...(kv.layers ? { layers: kv.layers } : {}), ...(kv.window ? { window: kv.window } : {}), ...(kv.sinks ? { sinks: kv.sinks } : {}), ...(kv.exactFormat ? { exact_format: kv.exactFormat } : {}) };
}

function report(r: PerplexityRunResult, evalText: EvalText, model: Model, opts: PerplexityOptions, kv: KvConfig): void {
  const seconds = r.ms / 1000;
  if (opts.json) {
    const out: Record<string, unknown> = {
      ppl: r.ppl,
      ppl_stderr: r.pplStderr,
      n_tokens: r.nTokens,
      kv: { ...kvIdentity(kv), bytes: r.kvBytes, config: kv.name },
      kv_bytes: r.kvBytes,
      kv_bits_per_value: kvBitsPerValue(r.kvBytes, evalText.ctx, model.config.nLayers, model.config.kvDim),
      rotation: r.rotation,
      ctx: evalText.ctx,
      chunks: r.nChunks,
      model: model.path,
      text_sha256: evalText.textSha256,
      seconds,
    };
    if (r.kld) {
      Object.assign(out, {
        kld_mean: r.kld.kldMean,
        kld_mean_stderr: r.kld.kldMeanStderr,
        kld_median: r.kld.kldMedian,
        kld_p99: r.kld.kldP99,
        kld_max: r.kld.kldMax,
        top1_agree: r.kld.sameTopFraction,
        ppl_base: r.kld.pplBase,
        ppl_base_stderr: r.kld.pplBaseStderr,
        delta_ppl_pct: r.kld.deltaPplPct,
        delta_ppl_pct_stderr: r.kld.deltaPplPctStderr,
      });
    }
    if (opts.klDivergenceBase !== undefined) out.kl_divergence_base = opts.klDivergenceBase;
    writeJson(out);
    return;
  }
  const lines = [
    `kv: k=${kv.k} v=${kv.v} (${kv.name}), rotation ${r.rotation ? "on" : "off"}, ${formatBytes(r.kvBytes)} for ${evalText.ctx} tokens ` +
      `(${kvBitsPerValue(r.kvBytes, evalText.ctx, model.config.nLayers, model.config.kvDim).toFixed(2)} bits per value)`,
    `${r.nChunks} chunks of ${evalText.ctx}, ${r.nTokens} tokens scored, ${seconds.toFixed(1)} s (${((r.nChunks * evalText.ctx) / seconds).toFixed(1)} t/s)`,
    `PPL = ${r.ppl.toFixed(4)} ± ${r.pplStderr.toFixed(4)}`,
  ];
  if (r.kld) {
    const k = r.kld;
    lines.push(
      `PPL(base) = ${k.pplBase.toFixed(4)} ± ${k.pplBaseStderr.toFixed(4)}`,
      `Δppl = ${formatSigned(k.deltaPplPct, 3)} ± ${k.deltaPplPctStderr.toFixed(3)} %`,
      `KLD: mean ${k.kldMean.toExponential(3)} ± ${k.kldMeanStderr.toExponential(2)}, median ${k.kldMedian.toExponential(3)}, ` +
        `p99 ${k.kldP99.toExponential(3)}, max ${k.kldMax.toExponential(3)}`,
      `same top token: ${(100 * k.sameTopFraction).toFixed(2)} %`,
    );
  }
  process.stdout.write(lines.join("\n") + "\n");
}

/** Run `f`, turning the evaluation layer's input errors into the CLI's (exit code 2). */
export function asCliError<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof EvalInputError) throw new UsageError(err.message);
    if (err instanceof KldFileError) throw new InputFileError(err.file, err.problem);
    throw err;
  }
}
