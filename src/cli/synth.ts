/**
 * `kvsplit synth`: write a synthetic GGUF model of a preset shape (random weights, a working tokenizer),
 * for tests and benchmarks without a download.
 */
import { Option, type Command } from "commander";
import { existsSync, statSync } from "node:fs";
import { availableParallelism } from "node:os";
import path from "node:path";
import cliProgress from "cli-progress";
import { SYNTH_PRESETS, SYNTH_WEIGHT_TYPES, synthToFile, type SynthPresetName, type SynthProgress, type SynthWeightType } from "../gguf/synth.js";
import { formatDuration } from "../report/progress.js";
import { UsageError } from "./errors.js";
import { addThreadsOption, formatBytes, intArg, log, writeJson } from "./options.js";

const PRESET_NAMES = Object.keys(SYNTH_PRESETS) as SynthPresetName[];
/** Without a terminal: a progress line at most this often. */
const PLAIN_INTERVAL_MS = 5000;

interface SynthOptions {
  preset: SynthPresetName;
  type: SynthWeightType;
  seed: number;
  output: string;
  threads?: number;
  json?: boolean;
}

export function registerSynth(program: Command): void {
  const cmd = program
    .command("synth")
    .description("write a synthetic GGUF model (random weights) of a preset shape")
    .addOption(new Option("--preset <name>", "model shape").choices(PRESET_NAMES).makeOptionMandatory())
    .addOption(new Option("--type <type>", "weight type of the 2-D matrices").choices(SYNTH_WEIGHT_TYPES).default("f32"))
    .addOption(new Option("--seed <n>", "weight seed").argParser(intArg(0, 0xffffffff)).default(1))
    .requiredOption("-o, --output <file>", "GGUF file to write");
  addThreadsOption(cmd)
    .option("--json", "print one JSON object: {path, preset, type, seed, bytes}")
    .action((opts: SynthOptions) => synthCommand(opts));
}

function synthCommand(opts: SynthOptions): void {
  const folder = path.dirname(path.resolve(opts.output));
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new UsageError(`-o ${opts.output}: the folder ${folder} does not exist`);
  }
  const started = performance.now();
  const progress = createSynthProgress(`${opts.preset} ${opts.type}`, opts.output);
  let bytes: number;
  try {
    bytes = synthToFile(
      { preset: opts.preset, type: opts.type, seed: opts.seed },
      opts.output,
      { threads: opts.threads ?? availableParallelism(), onProgress: progress.update },
    );
  } finally {
    progress.stop();
  }
  const seconds = (performance.now() - started) / 1000;
  log(`wrote ${opts.output}: preset ${opts.preset}, ${opts.type} weights, seed ${opts.seed}, ${formatBytes(bytes)} in ${seconds.toFixed(1)} s`);
  if (opts.json) writeJson({ path: opts.output, preset: opts.preset, type: opts.type, seed: opts.seed, bytes });
}

/**
 * Progress on stderr: a bar with bytes, tensors and ETA on a terminal; otherwise a line when the write starts, then one
 * with the percentage and ETA at most every PLAIN_INTERVAL_MS, and none at the end (the command's summary follows).
 */
function createSynthProgress(label: string, output: string, stream: NodeJS.WriteStream = process.stderr): { update: (p: SynthProgress) => void; stop: () => void } {
  const started = performance.now();
  if (stream.isTTY) {
    const bar = new cliProgress.SingleBar(
      {
        stream,
        format: `synth ${label} {bar} {percentage}% | {done}/{size} | tensor {tensors} | {duration_formatted} (eta {eta_formatted})`,
        hideCursor: true,
        clearOnComplete: true,
        etaBuffer: 2000, // updates come per chunk (milliseconds apart): estimate over the last seconds, not the last instant
      },
      cliProgress.Presets.shades_classic,
    );
    let startedBar = false;
    return {
      update(p) {
        const payload = { done: formatBytes(p.bytesDone), size: formatBytes(p.bytesTotal), tensors: `${p.tensorsDone}/${p.tensorsTotal}` };
        if (!startedBar) {
          bar.start(p.bytesTotal, p.bytesDone, payload);
          startedBar = true;
        } else bar.update(p.bytesDone, payload);
      },
      stop: () => bar.stop(),
    };
  }
  let lastLine = -Infinity;
  return {
    update(p) {
      const now = performance.now();
      if (lastLine === -Infinity) {
        log(`synth ${label}: writing ${formatBytes(p.bytesTotal)} to ${output}`);
        lastLine = now;
        return;
      }
      if (p.bytesDone >= p.bytesTotal || now - lastLine < PLAIN_INTERVAL_MS) return;
      lastLine = now;
      const seconds = (now - started) / 1000;
      const fraction = p.bytesDone / p.bytesTotal;
      const eta = fraction > 0.001 && seconds > 1 ? `, eta ${formatDuration((seconds * (1 - fraction)) / fraction)}` : "";
      log(`synth ${label}: ${(100 * fraction).toFixed(1)}% (${formatBytes(p.bytesDone)} of ${formatBytes(p.bytesTotal)}, tensor ${p.tensorsDone}/${p.tensorsTotal}), ${seconds.toFixed(0)} s${eta}`);
    },
    stop() {},
  };
}
