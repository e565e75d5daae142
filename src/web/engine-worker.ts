/**
 * The engine in a browser: a dedicated module worker (the kernels' thread pool blocks its caller with Atomics.wait,
 * which a page's main thread may not do) that loads a model, keeps one session, and streams generations back to
 * client.ts. One request runs at a time; "stop" aborts the running generation between tokens.
 */
import { Conversation } from "../chat/conversation.js";
import { chatTemplateOf, type ModelChatTemplate } from "../chat/model-template.js";
import { checkScheduleLayers, parseKvSchedule } from "../kv/schedule.js";
import { configOfSchedule, exactOptions, kvPairsOf, parseKvConfig } from "../kv/shorthand.js";
import { Model } from "../model/model.js";
import { Sampler } from "../model/sampler.js";
import type { Session } from "../model/session.js";
import { generateStream, type StreamResult } from "../model/stream.js";
import { provideKernelBytes } from "../runtime/kernel-bytes.web.js";
import { kernelVariant, useKernelVariant } from "../runtime/wasm.js";
import { fileSource, urlSource, type ClosableSource } from "./model-store.js";
import type { EngineEvent, EngineRequest, GenerateSettings, GenerationSummary, LoadSettings, ModelInfo, ModelSource } from "./protocol.js";

/** A page's default context when the model's trained one is longer: 4096 tokens keep a tab's memory modest. */
const PAGE_DEFAULT_CONTEXT = 4096;

interface Loaded {
  model: Model;
  session: Session;
  template: ModelChatTemplate;
  conversation: Conversation | undefined;
  info: ModelInfo;
}

let threads = 1;
let loaded: Loaded | undefined;
let running: AbortController | undefined;
/** Requests run one after another (a stop message is handled at once). */
let queue: Promise<void> = Promise.resolve();

const post = (event: EngineEvent): void => (self as unknown as Worker).postMessage(event);

self.onmessage = (e: MessageEvent<EngineRequest>) => {
  const request = e.data;
  if (request.type === "stop") {
    running?.abort();
    return;
  }
  queue = queue.then(() => handle(request)).catch((err: unknown) => {
    const error = err instanceof Error ? err : new Error(String(err));
    const loadedNow = request.type === "load" ? { loaded: loaded?.info ?? null } : {};
    post({ type: "error", id: request.id, name: error.name, message: error.message, ...loadedNow });
  });
};

async function handle(request: Exclude<EngineRequest, { type: "stop" }>): Promise<void> {
  switch (request.type) {
    case "init":
      return init(request.id, request.threads, request.base);
    case "load":
      return load(request.id, request.source, request.settings);
    case "complete":
      return complete(request.id, request.prompt, request.settings);
    case "chat":
      return chat(request.id, request.message, request.system, request.settings);
    case "reset":
      requireModel().session.reset();
      requireModel().conversation = undefined;
      post({ type: "reset-done", id: request.id });
      return;
  }
}

async function init(id: number, wanted: number, base: string): Promise<void> {
  // Threads share one WebAssembly memory, which a page has only when cross-origin isolated; elsewhere one thread runs
  // the "single" build (plain SIMD over an unshared memory).
  const isolated = self.crossOriginIsolated === true;
  if (!isolated) useKernelVariant("single");
  threads = isolated ? Math.max(1, Math.floor(wanted)) : 1;
  const variant = kernelVariant();
  const file = { plain: "kernels.wasm", relaxed: "kernels-relaxed.wasm", single: "kernels-single.wasm" }[variant];
  const response = await fetch(new URL(file, base));
  if (!response.ok) throw new Error(`${file}: HTTP ${response.status}`);
  provideKernelBytes(variant, new Uint8Array(await response.arrayBuffer()));
  post({ type: "ready", id, threads, crossOriginIsolated: isolated, kernels: variant });
}

async function load(id: number, source: ModelSource, settings: LoadSettings): Promise<void> {
  let lastPost = 0;
  const progress = (phase: "download" | "read") => (done: number, total: number) => {
    const now = performance.now();
    if (done < total && now - lastPost < 100) return;
    lastPost = now;
    post({ type: "progress", id, phase, done, total });
  };
  const config = settings.schedule !== undefined ? configOfSchedule(parseKvSchedule(settings.schedule, "the K/V schedule")) : parseKvConfig(settings.kv ?? "F16");
  // the new source is opened (and its first bytes checked) before the loaded model is let go
  const src: ClosableSource = "url" in source ? await urlSource(source.url, progress("download")) : fileSource(source.file);
  if (loaded) {
    loaded.session.dispose();
    loaded.model.dispose();
    loaded = undefined;
  }
  let model: Model;
  try {
    model = Model.fromSource(countingReads(src, progress("read")), { threads });
  } finally {
    src.close();
  }
  if (config.layers) {
    try {
      checkScheduleLayers(config.layers, model.config.nLayers, "the K/V schedule");
    } catch (e) {
      model.dispose();
      throw e;
    }
  }
  try {
    await model.pool.ready();
    const contextSize = settings.contextSize ?? Math.min(model.config.contextLength, PAGE_DEFAULT_CONTEXT);
    const session = model.createSession({ contextSize, kv: kvPairsOf(config), ...exactOptions(config) });
    await model.pool.ready(); // a session in a new shard restarts the workers
    const template = chatTemplateOf(model.gguf, model.tokenizer);
    const kvDim = model.config.kvDim;
    const info: ModelInfo = {
      name: src.name,
      architecture: model.config.architecture,
      layers: model.config.nLayers,
      contextSize,
      trainedContext: model.config.contextLength,
      kvConfig: config.name,
      kvLayers: session.kv.map((p) => ({ k: p.k, v: p.v })),
      kvBytesPerToken: session.kvBytes / contextSize, // scales, exact windows and sinks spread over the context
      f16BytesPerToken: model.config.nLayers * kvDim * 2 * 2,
      kvBytes: session.kvBytes,
      threads,
      kernels: kernelVariant(),
      fromCache: src.fromCache,
      chatTemplate: template.source,
      contextWarning: session.contextWarning,
    };
    loaded = { model, session, template, conversation: undefined, info };
    post({ type: "loaded", id, info });
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The source, reporting how much of it has been read (the weights are most of it). */
function countingReads(src: ClosableSource, onProgress: (done: number, total: number) => void): ClosableSource {
  let done = 0;
  return {
    ...src,
    read(offset: number, length: number): Uint8Array {
      const bytes = src.read(offset, length);
      done = Math.min(src.size, done + length);
      onProgress(done, src.size);
      return bytes;
    },
  };
}

function requireModel(): Loaded {
  if (!loaded) throw new Error("no model is loaded");
  return loaded;
}

function samplerOf(settings: GenerateSettings): Sampler {
  const { maxTokens: _m, stop: _s, ...sampling } = settings;
  return new Sampler(sampling);
}

/** Text completion: the prompt (with the tokenizer's BOS) continues from the longest prefix the cache holds. */
async function complete(id: number, prompt: string, settings: GenerateSettings): Promise<void> {
  const { model, session } = requireModel();
  const tokens = model.tokenizer.encode(prompt, { addSpecial: true });
  const { kept } = session.keepPrefix(tokens);
  running = new AbortController();
  const stream = generateStream(session, model.tokenizer, tokens.slice(kept), {
    maxTokens: settings.maxTokens ?? 256,
    sampler: samplerOf(settings),
    stop: settings.stop,
    signal: running.signal,
    cachedTokens: tokens.slice(0, kept),
  });
  try {
    for await (const piece of stream) post({ type: "piece", id, text: piece.text, token: piece.token, position: session.position });
  } finally {
    running = undefined;
  }
  post({ type: "done", id, summary: summaryOf(stream.result!, kept, session) });
}

/** One chat turn: the conversation so far is rendered with the model's template; only new tokens are evaluated. */
async function chat(id: number, message: string, system: string | undefined, settings: GenerateSettings): Promise<void> {
  const state = requireModel();
  const { model, session } = state;
  if (!state.conversation) {
    session.reset();
    state.conversation = new Conversation(session, model.tokenizer, state.template.template, system);
  }
  running = new AbortController();
  const reply = state.conversation.send(message, { sampler: samplerOf(settings), maxTokens: settings.maxTokens ?? 512, stop: settings.stop, signal: running.signal });
  try {
    for await (const piece of reply) post({ type: "piece", id, text: piece.text, token: piece.token, position: session.position });
  } finally {
    running = undefined;
  }
  post({ type: "done", id, summary: summaryOf(reply.result!, reply.result!.cachedTokens, session) });
}

function summaryOf(r: StreamResult, cachedTokens: number, session: Session): GenerationSummary {
  return {
    text: r.text, tokens: r.tokens, stopReason: r.stopReason, promptTokens: r.promptTokens, cachedTokens,
    promptMs: r.promptMs, genTokens: r.genEvals, genMs: r.genMs, position: session.position,
  };
}
