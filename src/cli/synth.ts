/**
 * `kvsplit synth`: write a synthetic GGUF model of a preset shape (random weights, a working tokenizer),
 * for tests and benchmarks without a download.
 */
import { Option, type Command } from "commander";
import { existsSync, statSync } from "node:fs";
import path from "node:path";
import { SYNTH_PRESETS, synthToFile, type SynthPresetName, type SynthWeightType } from "../gguf/synth.js";
import { UsageError } from "./errors.js";
import { formatBytes, intArg, log, writeJson } from "./options.js";

const PRESET_NAMES = Object.keys(SYNTH_PRESETS) as SynthPresetName[];
/** Weight types a synthetic model can be written in (the synthesizer checks them too). */
const WEIGHT_TYPES: readonly SynthWeightType[] = ["f32", "f16", "q8_0", "q6_K", "q5_K", "q4_K", "q3_K", "q2_K"];

interface SynthOptions {
  preset: SynthPresetName;
  type: SynthWeightType;
  seed: number;
  output: string;
  json?: boolean;
}

export function registerSynth(program: Command): void {
  program
    .command("synth")
    .description("write a synthetic GGUF model (random weights) of a preset shape")
    .addOption(new Option("--preset <name>", "model shape").choices(PRESET_NAMES).makeOptionMandatory())
    .addOption(new Option("--type <type>", "weight type of the 2-D matrices").choices(WEIGHT_TYPES).default("f32"))
    .addOption(new Option("--seed <n>", "weight seed").argParser(intArg(0, 0xffffffff)).default(1))
    .requiredOption("-o, --output <file>", "GGUF file to write")
    .option("--json", "print one JSON object: {path, preset, type, seed, bytes}")
    .action((opts: SynthOptions) => synthCommand(opts));
}

function synthCommand(opts: SynthOptions): void {
  const folder = path.dirname(path.resolve(opts.output));
  if (!existsSync(folder) || !statSync(folder).isDirectory()) {
    throw new UsageError(`-o ${opts.output}: the folder ${folder} does not exist`);
  }
  const started = performance.now();
  const bytes = synthToFile({ preset: opts.preset, type: opts.type, seed: opts.seed }, opts.output);
  const seconds = (performance.now() - started) / 1000;
  log(`wrote ${opts.output}: preset ${opts.preset}, ${opts.type} weights, seed ${opts.seed}, ${formatBytes(bytes)} in ${seconds.toFixed(1)} s`);
  if (opts.json) writeJson({ path: opts.output, preset: opts.preset, type: opts.type, seed: opts.seed, bytes });
}
