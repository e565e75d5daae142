/**
 * `kvsplit run`: generate text from a prompt with the chosen K/V cache formats.
 * Streams the generated text to stdout (or prints one JSON object with --json); the summary goes to stderr.
 */
import type { Command } from "commander";
import { loadModel } from "../index.js";
import { TokenTextDecoder } from "../tokenizer/index.js";
import { generate, tokensPerSecond } from "../model/generate.js";
import { exactOptions } from "../kv/shorthand.js";
import {
  addContextShiftOptions,
  addModelOption,
  addSamplingOptions,
  addSessionOptions,
  addTextInputOptions,
  checkModelPath,
  contextShiftKeep,
  formatBytes,
  intArg,
  kvConfigFromOptions,
  sessionKv,
  log,
  readTextInput,
  samplerFromOptions,
  writeJson,
  type ContextShiftValues,
  type SamplingOptionValues,
  type SessionOptionValues,
  type TextInputValues,
} from "./options.js";

interface RunOptions extends SessionOptionValues, TextInputValues, SamplingOptionValues, ContextShiftValues {
  model: string;
  stateLoad?: string;
  stateSave?: string;
  nPredict: number;
  ctxSize?: number;
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
  addSamplingOptions(cmd);
  addContextShiftOptions(cmd);
  cmd
    .option("--state-load <file>", "start from a saved KV state: the prompt tokens it already holds are not evaluated again")
    .option("--state-save <file>", "save the KV state (prompt and generated tokens, packed K/V as stored) when done")
    .option("--json", "print one JSON object (tokens, text, kv, timings) instead of streaming text")
    .action((opts: RunOptions) => runCommand(opts));
}

function runCommand(opts: RunOptions): void {
  // Everything the user typed is checked before the model is loaded.
  const kv = kvConfigFromOptions(opts);
  const promptText = readTextInput(opts);
  const modelPath = checkModelPath(opts.model);
  const sampler = samplerFromOptions(opts);
  const maxTokens = opts.nPredict < 0 ? Infinity : opts.nPredict;

  const pairs = sessionKv(kv, modelPath);
  const model = loadModel(modelPath, { threads: opts.threads, batchSize: opts.batchSize, session: { contextSize: opts.ctxSize, kv: pairs, ...exactOptions(kv) } });
  try {
    const session = model.createSession({ contextSize: opts.ctxSize, kv: pairs, rotation: opts.kvRotation, ...exactOptions(kv) });
    try {
      if (session.contextWarning) log(`warning: ${session.contextWarning}`);
      const tokenizer = model.tokenizer;
      const allPromptTokens = tokenizer.encode(promptText, { addSpecial: true });
      // a saved state: keep the prefix it shares with this prompt (llama.cpp's --prompt-cache), evaluate the rest
      let fromState = 0;
      if (opts.stateLoad !== undefined) {
        session.loadState(opts.stateLoad);
        fromState = session.keepPrefix(allPromptTokens).kept;
        log(`state: ${fromState} prompt tokens from ${opts.stateLoad}`);
      }
      const promptTokens = allPromptTokens.slice(fromState);
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
        contextShiftKeep: contextShiftKeep(opts, tokenizer.addBos),
      });
      emit(decoder.flush());
      if (!opts.json) process.stdout.write("\n");
      if (opts.stateSave !== undefined) {
        const bytes = session.saveState(opts.stateSave);
        log(`state: ${session.position} tokens saved to ${opts.stateSave} (${formatBytes(bytes)}, ${formatBytes((bytes * 1024) / Math.max(1, session.position))} per 1K tokens)`);
      }

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
          ...(opts.stateLoad !== undefined ? { state_tokens: fromState } : {}),
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
