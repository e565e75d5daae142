/**
 * `kvsplit run`: generate text from a prompt with the chosen K/V cache formats.
 * Streams the generated text to stdout (or prints one JSON object with --json); the summary goes to stderr.
 */
import type { Command } from "commander";
import { loadModel } from "../index.js";
import { TokenTextDecoder } from "../tokenizer/index.js";
import { Sampler, DEFAULT_SAMPLING } from "../model/sampler.js";
import { generate, tokensPerSecond } from "../model/generate.js";
import { exactOptions } from "../kv/shorthand.js";
import {
  addModelOption,
  addSessionOptions,
  addTextInputOptions,
  checkModelPath,
  floatArg,
  formatBytes,
  intArg,
  kvConfigFromOptions,
  sessionKv,
  log,
  readTextInput,
  writeJson,
  type SessionOptionValues,
  type TextInputValues,
} from "./options.js";

interface RunOptions extends SessionOptionValues, TextInputValues {
  model: string;
  nPredict: number;
  ctxSize?: number;
  temp: number;
  topK: number;
  topP: number;
  minP: number;
  seed: number;
  json?: boolean;
}

export function registerRun(program: Command): void {
  const cmd = program.command("run").description("generate text from a prompt");
  addModelOption(cmd);
  addTextInputOptions(cmd, "prompt");
  cmd
    .option("-n, --n-predict <n>", "tokens to generate (-1: until end of text or a full context)", intArg(-1), 128)
    .option("-c, --ctx-size <n>", "context size in tokens (default: the model's trained context)", intArg(1));
  addSessionOptions(cmd);
  cmd
    .option("--temp <t>", "temperature (0: greedy)", floatArg(0), DEFAULT_SAMPLING.temperature)
    .option("--top-k <k>", "keep the k most likely tokens (0: off)", intArg(0), DEFAULT_SAMPLING.topK)
    .option("--top-p <p>", "keep the smallest set with this total probability (1: off)", floatArg(0, 1), DEFAULT_SAMPLING.topP)
    .option("--min-p <p>", "drop tokens below p × the top probability (0: off)", floatArg(0, 1), DEFAULT_SAMPLING.minP)
    .option("-s, --seed <n>", "sampling seed (-1: random)", intArg(-1, 0xffffffff), -1)
    .option("--json", "print one JSON object (tokens, text, kv, timings) instead of streaming text")
    .action((opts: RunOptions) => runCommand(opts));
}

function runCommand(opts: RunOptions): void {
  // Everything the user typed is checked before the model is loaded.
  const kv = kvConfigFromOptions(opts);
  const promptText = readTextInput(opts);
  const modelPath = checkModelPath(opts.model);
  const sampler = new Sampler({
    temperature: opts.temp,
    topK: opts.topK,
    topP: opts.topP,
    minP: opts.minP,
    seed: opts.seed >= 0 ? opts.seed : undefined,
  });
  const maxTokens = opts.nPredict < 0 ? Infinity : opts.nPredict;

  const pairs = sessionKv(kv, modelPath);
  const model = loadModel(modelPath, { threads: opts.threads, session: { contextSize: opts.ctxSize, kv: pairs, ...exactOptions(kv) } });
  try {
    const session = model.createSession({ contextSize: opts.ctxSize, kv: pairs, rotation: opts.kvRotation, ...exactOptions(kv) });
    try {
      const tokenizer = model.tokenizer;
      const promptTokens = tokenizer.encode(promptText, { addSpecial: true });
      // The text is the generated pieces as they stream (a leading space of the first one is kept: it continues the prompt).
      const decoder = new TokenTextDecoder(tokenizer);
      let text = "";
      const emit = (piece: string): void => {
        text += piece;
        if (!opts.json) process.stdout.write(piece);
      };
      const result = generate(session, promptTokens, {
        maxTokens,
        sampler,
        isEog: (id) => tokenizer.isEog(id),
        onToken: (id) => emit(decoder.push(id)),
      });
      emit(decoder.flush());
      if (!opts.json) process.stdout.write("\n");

      const promptTps = tokensPerSecond(result.promptTokens, result.promptMs);
      const genTps = tokensPerSecond(result.genEvals, result.genMs);
      const sampling =
        opts.temp > 0
          ? `temp ${opts.temp}, top-k ${opts.topK}, top-p ${opts.topP}, min-p ${opts.minP}, seed ${sampler.settings.seed}`
          : "greedy";
      log(`kv: k=${kv.k} v=${kv.v} (${kv.name}), rotation ${session.rotation ? "on" : "off"}, ${session.kvBytes} bytes (${formatBytes(session.kvBytes)}) for ${session.contextSize} tokens`);
      log(`sampling: ${sampling}; stopped: ${result.stopReason}`);
      log(`prompt: ${result.promptTokens} tokens, ${promptTps.toFixed(2)} t/s`);
      log(`generation: ${result.tokens.length} tokens, ${genTps.toFixed(2)} t/s`);

      if (opts.json) {
        writeJson({
          tokens: result.tokens,
          text,
          kv: { k: kv.k, v: kv.v, bytes: session.kvBytes, ...(kv.layers ? { layers: kv.layers } : {}), ...(kv.window ? { window: kv.window } : {}), ...(kv.sinks ? { sinks: kv.sinks } : {}) },
          timings: { prompt_tps: promptTps, gen_tps: genTps },
          prompt_tokens: result.promptTokens,
          stop_reason: result.stopReason,
          seed: sampler.settings.seed,
        });
      }
    } finally {
      session.dispose();
    }
  } finally {
    model.dispose();
  }
}
