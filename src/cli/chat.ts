/**
 * `kvsplit chat`: an interactive chat in the terminal with the model's chat template, answers streamed, each turn
 * evaluating only what the KV cache does not hold yet. On a terminal it prompts with "> " and Ctrl-C stops the answer
 * being written (Ctrl-C at the prompt, Ctrl-D or /exit ends the chat); with stdin from a pipe or file, every line is
 * one user message and every answer is printed followed by a blank line. Summary lines go to stderr.
 */
import { createInterface } from "node:readline";
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { loadModel } from "../index.js";
import type { Sampler } from "../model/sampler.js";
import { tokensPerSecond } from "../model/generate.js";
import { exactOptions } from "../kv/shorthand.js";
import { chatTemplateOf } from "../chat/model-template.js";
import { Conversation } from "../chat/conversation.js";
import { InputFileError } from "./errors.js";
import {
  addContextShiftOptions, addModelOption, addSamplingOptions, contextShiftKeep, type ContextShiftValues, addSessionOptions, checkModelPath, formatBytes, intArg, kvConfigFromOptions, log, samplerFromOptions, sessionKv,
  type SamplingOptionValues, type SessionOptionValues,
} from "./options.js";

interface ChatOptions extends SessionOptionValues, SamplingOptionValues, ContextShiftValues {
  model: string;
  system?: string;
  chatTemplateFile?: string;
  nPredict: number;
  ctxSize?: number;
  stop?: string[];
}

export function registerChat(program: Command): void {
  const cmd = program.command("chat").description("chat with a model in the terminal (its chat template, streamed answers, multi-turn)");
  addModelOption(cmd);
  cmd
    .option("--system <text>", "system message")
    .option("--chat-template-file <file>", "Jinja chat template to use instead of the model's own (tokenizer.chat_template)")
    .option("-n, --n-predict <n>", "tokens per answer at most (-1: until the end of the turn or a full context)", intArg(-1), -1)
    .option("-c, --ctx-size <n>", "context size in tokens for the whole conversation (default: the model's trained context)", intArg(1));
  addSessionOptions(cmd);
  addSamplingOptions(cmd);
  addContextShiftOptions(cmd);
  cmd
    .option("--stop <text>", "end an answer where this text appears (repeatable)", (s: string, prev: string[] = []) => [...prev, s])
    .action((opts: ChatOptions) => chatCommand(opts));
}

function readTemplateFile(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (err) {
    throw new InputFileError(file, `cannot read the chat template: ${(err as Error).message}`);
  }
}

async function chatCommand(opts: ChatOptions): Promise<void> {
  const kv = kvConfigFromOptions(opts);
  const modelPath = checkModelPath(opts.model);
  const override = opts.chatTemplateFile !== undefined ? { text: readTemplateFile(opts.chatTemplateFile), origin: opts.chatTemplateFile } : undefined;
  const sampler = samplerFromOptions(opts);
  const pairs = sessionKv(kv, modelPath);
  const model = loadModel(modelPath, { threads: opts.threads, batchSize: opts.batchSize, session: { contextSize: opts.ctxSize, kv: pairs, ...exactOptions(kv) } });
  try {
    const { template, source } = chatTemplateOf(model.gguf, model.tokenizer, override);
    if (source === "chatml") log("chat: the model has no chat template (tokenizer.chat_template); using ChatML. Give one with --chat-template-file.");
    const session = model.createSession({ contextSize: opts.ctxSize, kv: pairs, rotation: opts.kvRotation, ...exactOptions(kv) });
    try {
      if (session.contextWarning) log(`warning: ${session.contextWarning}`);
      log(`chat: kv k=${kv.k} v=${kv.v} (${kv.name}), ${formatBytes(session.kvBytes)} for ${session.contextSize} tokens; template: ${source}`);
      const conversation = new Conversation(session, model.tokenizer, template, opts.system);
      await converse(conversation, opts, sampler, session.contextSize, contextShiftKeep(opts, model.tokenizer.addBos));
    } finally {
      session.dispose();
    }
  } finally {
    model.dispose();
  }
}

async function converse(conversation: Conversation, opts: ChatOptions, sampler: Sampler, contextSize: number, shiftKeep: number | undefined): Promise<void> {
  const interactive = process.stdin.isTTY === true;
  const rl = createInterface({ input: process.stdin, output: interactive ? process.stdout : undefined, terminal: interactive });
  let answering: AbortController | undefined;
  rl.on("SIGINT", () => {
    if (answering) answering.abort();
    else rl.close();
  });
  if (interactive) {
    process.stdout.write("Chat: type a message and Enter; Ctrl-C stops an answer, Ctrl-D or /exit quits.\n");
    rl.setPrompt("> ");
    rl.prompt();
  }
  for await (const line of rl) {
    const text = line.trim();
    if (text === "/exit" || text === "/quit") break;
    if (text === "") {
      if (interactive) rl.prompt();
      continue;
    }
    answering = new AbortController();
    const reply = conversation.send(text, {
      sampler,
      maxTokens: opts.nPredict < 0 ? Infinity : opts.nPredict,
      stop: opts.stop,
      signal: answering.signal,
      contextShiftKeep: shiftKeep,
    });
    for await (const piece of reply) process.stdout.write(piece.text);
    answering = undefined;
    process.stdout.write(interactive ? "\n" : "\n\n");
    const r = reply.result!;
    const stopped = r.stopReason === "aborted" ? "stopped by Ctrl-C" : r.stopReason;
    log(
      `[${r.promptTokens} new prompt tokens (${r.cachedTokens} cached${r.reevaluated ? ", history evaluated again" : ""}) at ` +
        `${tokensPerSecond(r.promptTokens, r.promptMs).toFixed(1)} t/s; ${r.tokens.length} answer tokens at ` +
        `${tokensPerSecond(r.genEvals, r.genMs).toFixed(1)} t/s; ${stopped}${r.shifts ? `; ${r.shifts} context shift${r.shifts > 1 ? "s" : ""}` : ""}; ` +
        `${conversation.position} of ${contextSize} context tokens used]`,
    );
    if (interactive) rl.prompt();
  }
  rl.close();
}
