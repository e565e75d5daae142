/**
 * `kvsplit tune`: measure each layer × side × format's KLD cost on a calibration text, allocate a bit or memory budget
 * to the least total cost (eval/tune.ts), write the schedule (for --kv-schedule), its measured check and a heatmap.
 * Progress and an ETA on stderr; the measured costs are rewritten after each run (FILE.costs.json), so an interrupted
 * tune keeps them.
 */
import path from "node:path";
import { Option, type Command } from "commander";
import { loadModel } from "../index.js";
import { getKvFormat } from "../formats/table.js";
import { EXACT_FORMAT_NAMES, type ExactFormatName, type KvFormatName } from "../formats/types.js";
import { kvExactBytes } from "../kv/cache.js";
import { kvScheduleJson } from "../kv/schedule.js";
import { parseByteSize } from "../eval/plan.js";
import { prepareEvalText, runPerplexity, sha256Hex } from "../eval/perplexity.js";
import {
  DEFAULT_TUNE_FORMATS, allocateSchedule, bytesPerTokenForBits, measureTuneCosts, minimumBytesPerToken, tuneBaseline, type TuneMeasurement,
} from "../eval/tune.js";
import { writeFileAtomic } from "../report/atomic.js";
import { sensitivityHeatmap } from "../report/heatmap.js";
import { renderSvg, svgToPng } from "../report/plots.js";
import { createProgress } from "../report/progress.js";
import { formatTable } from "../report/table.js";
import { UsageError } from "./errors.js";
import { addCtxOption, asCliError, DEFAULT_PERPLEXITY_CTX } from "./perplexity.js";
import { addKvRotationOption, addModelOption, addBatchSizeOption, addThreadsOption, checkModelPath, floatArg, intArg, log, readTextInput, writeJson } from "./options.js";

interface TuneOptions {
  model: string;
  file: string;
  ctxSize?: number;
  chunks?: number;
  bits?: number;
  memory?: string;
  output: string;
  formats: string;
  kvRotation: boolean;
  threads?: number;
  batchSize?: number;
  kvWindow?: number;
  kvExactFormat: ExactFormatName;
  json?: boolean;
}

export function registerTune(program: Command): void {
  const cmd = program
    .command("tune")
    .description("find the per-layer K/V formats with the least KL divergence for a bit or memory budget; writes a --kv-schedule file");
  addModelOption(cmd);
  cmd.requiredOption("-f, --file <path>", "calibration text");
  addCtxOption(cmd);
  cmd
    .option("--chunks <n>", "calibrate on at most this many chunks (default: all that fit)", intArg(1))
    .addOption(new Option("--bits <b>", "average bits per cached value, scales included (e.g. 5.5)").argParser(floatArg(0.5, 32)).conflicts("memory"))
    .option("--memory <size>", "KV cache memory at -c tokens, e.g. 64MiB")
    .requiredOption("-o, --output <file>", "where to write the schedule (JSON)")
    .option("--formats <list>", "candidate formats besides f16, comma-separated", DEFAULT_TUNE_FORMATS.join(","))
    .option("--kv-window <n>", "tune under an exact window of each query's last N positions (its rows, f16 or --kv-exact-format, count in the budget)", intArg(0), 0)
    .addOption(new Option("--kv-exact-format <format>", "the window's rows: f16, or q8_0 (8.5 bits per value: almost twice the window for the same bytes)").choices([...EXACT_FORMAT_NAMES]).default("f16"));
  addKvRotationOption(cmd);
  addThreadsOption(cmd);
  addBatchSizeOption(cmd);
  cmd.option("--json", "print one JSON object: the schedule, its bits and its predicted and measured KLD").action((opts: TuneOptions) => tuneCommand(opts));
}

async function tuneCommand(opts: TuneOptions): Promise<void> {
  if ((opts.bits === undefined) === (opts.memory === undefined)) throw new UsageError("give exactly one budget: --bits B (average bits per value) or --memory SIZE");
  const formats = opts.formats.split(",").map((f) => f.trim()).filter((f) => f !== "").map((f): KvFormatName => {
    try {
      return getKvFormat(f).name as KvFormatName;
    } catch (err) {
      throw new UsageError(`--formats: ${(err as Error).message}`);
    }
  });
  if (formats.filter((f) => f !== "f16").length === 0) throw new UsageError("--formats: give at least one format besides f16");
  let memory: number | undefined;
  if (opts.memory !== undefined) {
    try {
      memory = parseByteSize(opts.memory);
    } catch (err) {
      throw new UsageError(`--memory: ${(err as Error).message}`);
    }
  }
  const text = readTextInput({ file: opts.file });
  const modelPath = checkModelPath(opts.model);
  const out = path.resolve(opts.output);
  const stem = out.replace(/\.json$/i, "");

  const model = loadModel(modelPath, { threads: opts.threads, batchSize: opts.batchSize });
  try {
    const c = model.config;
    const ctx = opts.ctxSize ?? Math.min(DEFAULT_PERPLEXITY_CTX, c.contextLength);
    const evalText = asCliError(() => prepareEvalText(model, text, ctx, opts.chunks));
    // the window's rows (f16 or q8_0) are a fixed cost: what is left of the budget, per token, goes to the packed rows
    const window = Math.min(opts.kvWindow ?? 0, ctx);
    const exactFormat = opts.kvExactFormat;
    const windowPerToken = kvExactBytes(window, c.nLayers, c.kvDim, exactFormat) / ctx;
    const maxBytesPerToken = (memory !== undefined ? memory / ctx : bytesPerTokenForBits(opts.bits!, c.nLayers, c.kvDim)) - windowPerToken;
    const candidates = formats.filter((f) => f !== "f16");
    const smallest = minimumBytesPerToken(candidates, c.nLayers, c.kvDim);
    if (maxBytesPerToken < smallest) {
      const flag = memory !== undefined ? `--memory ${opts.memory} at -c ${ctx}` : `--bits ${opts.bits}`;
      throw new UsageError(
        `${flag} allows ${maxBytesPerToken.toFixed(0)} bytes per token${window ? ` beside the window's ${windowPerToken.toFixed(0)}` : ""}, below the smallest schedule's ${smallest} ` +
          `(${(8 * smallest / (2 * c.nLayers * c.kvDim)).toFixed(2)} bits per value: every layer in the smallest of ${candidates.join(", ")})`,
      );
    }
    log(
      `tune: ${path.basename(modelPath)}, ${evalText.chunks.length} chunks of ${ctx} tokens, ${c.nLayers} layers × K, V × ${candidates.length} formats ` +
        `(${candidates.join(", ")}) = ${2 + 2 * c.nLayers * candidates.length} runs; budget ${maxBytesPerToken.toFixed(0)} bytes per token`,
    );
    const progress = createProgress(2 + 2 * c.nLayers * candidates.length);
    const base = tuneBaseline(model, evalText, opts.kvRotation);
    let m: TuneMeasurement;
    try {
      m = measureTuneCosts(model, evalText, {
        base,
        formats: candidates,
        rotation: opts.kvRotation,
        kvWindow: window,
        kvExactFormat: exactFormat,
        onProgress: (p) => progress.update(p.done, p.label),
        onCell: (partial) => writeFileAtomic(`${stem}.costs.json`, JSON.stringify(partial, null, 1) + "\n"),
      });
    } finally {
      progress.stop();
    }
    const choice = allocateSchedule(m, maxBytesPerToken);

    // the check: the chosen schedule against the same baseline, measured
    const measured = runPerplexity(model, evalText, { kv: choice.layers, kvWindow: window, kvExactFormat: exactFormat, rotation: opts.kvRotation, baseline: base }).kld!.kldMean;

    const bitsPerValue = choice.bitsPerValue + (8 * windowPerToken) / (2 * c.nLayers * c.kvDim);
    const expected = {
      bits_per_value: bitsPerValue,
      kv_bytes_per_token: choice.bytesPerToken + windowPerToken,
      kld_predicted: choice.predictedKld,
      kld_measured_on_calibration: measured,
    };
    const tunedOn = { model: path.basename(modelPath), text: path.basename(opts.file), text_sha256: sha256Hex(text), ctx, chunks: evalText.chunks.length, rotation: opts.kvRotation };
    writeFileAtomic(out, kvScheduleJson(choice.layers, { note: "written by kvsplit tune; use with --kv-schedule", tuned_on: tunedOn, expected }, window, exactFormat));

    const reference = candidates.reduce((a, b) => (bitsOf(b) < bitsOf(a) ? b : a));
    const subtitle =
      `${path.basename(modelPath)}, ${evalText.chunks.length} × ${ctx} tokens of ${path.basename(opts.file)}; schedule ${bitsPerValue.toFixed(2)} bits per value` +
      (window ? ` (window ${window}${exactFormat !== "f16" ? `, ${exactFormat}` : ""})` : "");
    const svg = await renderSvg(sensitivityHeatmap(m, reference, choice.layers, subtitle));
    writeFileAtomic(`${stem}.heatmap.svg`, svg);
    writeFileAtomic(`${stem}.heatmap.png`, svgToPng(svg));

    if (opts.json) {
      writeJson({ schedule: out, layers: choice.layers, ...expected, f16_kld: m.f16Kld, costs: m.cells });
    } else {
      const rows = choice.layers.map((p, l) => [String(l), p.k, p.v]);
      process.stdout.write(
        [
          formatTable([{ title: "layer", align: "right" }, { title: "K", align: "left" }, { title: "V", align: "left" }], rows),
          "",
          `bits per value ${bitsPerValue.toFixed(3)} (${(choice.bytesPerToken + windowPerToken).toFixed(0)} bytes per token at -c ${ctx}` +
            `${window ? `, the exact window of ${window} (${exactFormat}) included` : ""}; budget ${(maxBytesPerToken + windowPerToken).toFixed(0)})`,
          `mean KLD vs an f32 cache: predicted ${choice.predictedKld.toExponential(3)}, measured on the calibration text ${measured.toExponential(3)}`,
          `(f16 everywhere: ${m.f16Kld.toExponential(3)}). Check it on other text: kvsplit perplexity --kv-schedule ${opts.output} --kl-divergence BASE`,
        ].join("\n") + "\n",
      );
    }
    log(`wrote ${out}, ${stem}.costs.json and ${stem}.heatmap.png (.svg)`);
  } finally {
    model.dispose();
  }
}

/** Bits per value of a format's blocks (the heatmap shows the lowest-bit candidate). */
function bitsOf(format: KvFormatName): number {
  const f = getKvFormat(format);
  return (8 * f.bytesPerBlock) / f.blockSize;
}
