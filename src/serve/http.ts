/**
 * `kvsplit serve`'s HTTP server: OpenAI-compatible endpoints over a pool of slots, in llama-server's shape.
 *
 *   POST /v1/chat/completions, /v1/completions   (streamed as SSE `data: {...}` chunks then `data: [DONE]`, or not)
 *   GET  /v1/models, /health (503 while loading), /props, /slots, /metrics (Prometheus)
 *   GET  / : the chat page (dist/web: index.html, chat.js, the engine and its kernels), in remote mode
 *   POST /tokenize, /detokenize, /slots/{id}?action=save|restore|erase (save/restore: {"filename"} in --slot-save-path)
 *
 * Every request is answered: bad JSON, a wrong field, an unknown route or method, a body over the limit, a missing
 * API key, a full queue or an error inside generation give an HTTP status with an OpenAI error object; the server
 * keeps running. A client that disconnects stops its generation at the next token and frees its slot.
 */
import http from "node:http";
import path from "node:path";
import { statSync } from "node:fs";
import { randomBytes } from "node:crypto";
import type { AddressInfo } from "node:net";
import type { KvPair } from "../api.js";
import type { ExactFormatName } from "../formats/types.js";
import { loadModel, type Model } from "../model/model.js";
import { Sampler } from "../model/sampler.js";
import { StateFileError } from "../model/session-state.js";
import type { StreamPiece, StreamResult, TokenLogprob } from "../model/stream.js";
import { chatPromptTokens, chatTemplateOf, type ModelChatTemplate } from "../chat/model-template.js";
import { ServerMetrics } from "./metrics.js";
import { sendStaticFile, staticFileOf, WEB_DIR, type StaticMount } from "./static.js";
import { RequestError, finishReason, parseChatRequest, parseCompletionRequest, timingsOf, type GenerationJob } from "./openai.js";
import { SlotPool, type SlotPoolOptions } from "./slots.js";

export interface ServerOptions {
  modelPath: string;
  host?: string;
  /** 0: any free port. */
  port?: number;
  threads?: number;
  /** Tokens one step takes over all slots (LoadOptions.batchSize). */
  batchSize?: number;
  /** Each slot's context (default: the model's trained context, at most 4096). */
  contextSize?: number;
  kv: KvPair | readonly KvPair[];
  /** Shown in /props: "K8V4", a schedule file, ... */
  kvName?: string;
  rotation?: boolean;
  kvWindow?: number;
  kvSinks?: number;
  kvExactFormat?: ExactFormatName;
  parallel: SlotPoolOptions["parallel"];
  queueLimit?: number;
  /** Require `Authorization: Bearer <apiKey>` (not on /health). */
  apiKey?: string;
  chatTemplate?: { text: string; origin: string };
  /** The model id in /v1/models and responses (default: the file name). */
  alias?: string;
  /** Largest request body in bytes (default 16 MiB). */
  maxBodyBytes?: number;
  /** Folder for /slots/{id}?action=save|restore state files (those actions are refused without it). */
  slotSavePath?: string;
  /** Shift a slot's context when it fills, keeping this many first tokens after BOS (llama-server's --keep). */
  contextShift?: { keep: number };
}

type State = "loading" | "ready" | "failed";

interface Loaded {
  model: Model;
  pool: SlotPool;
  template: ModelChatTemplate;
}

const nowSeconds = () => Math.floor(Date.now() / 1000);

export class KvsplitServer {
  state: State = "loading";
  /** Why loading failed (state "failed"). */
  loadError: Error | undefined;
  readonly metrics: ServerMetrics;
  private loaded: Loaded | undefined;
  private readonly server: http.Server;
  private readonly alias: string;
  private stopping = false;
  /** Aborts of the generations in flight (shutdown ends them). */
  private readonly inFlight = new Set<AbortController>();
  /** The chat page's files (dist/web) at "/". */
  private readonly pageMounts: readonly StaticMount[] = [{ prefix: "/", dir: WEB_DIR }];

  constructor(readonly opts: ServerOptions) {
    this.alias = opts.alias ?? opts.modelPath.split(/[\\/]/).pop()!;
    this.metrics = new ServerMetrics(() => this.loaded?.pool);
    this.server = http.createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  /** Start listening (the model is not loaded yet: /health answers 503 until load()). */
  listen(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port ?? 8080, this.opts.host ?? "127.0.0.1", () => {
        const a = this.server.address() as AddressInfo;
        resolve(`http://${a.family === "IPv6" ? `[${a.address}]` : a.address}:${a.port}`);
      });
    });
  }

  /** Load the model and create the slots (synchronous: requests wait until it returns). */
  load(): void {
    try {
      const o = this.opts;
      const model = loadModel(o.modelPath, { threads: o.threads, batchSize: o.batchSize, session: o.contextSize ? { contextSize: o.contextSize, kv: o.kv, kvWindow: o.kvWindow, kvSinks: o.kvSinks, kvExactFormat: o.kvExactFormat } : undefined });
      try {
        const template = chatTemplateOf(model.gguf, model.tokenizer, o.chatTemplate);
        const contextSize = o.contextSize ?? Math.min(4096, model.config.contextLength);
        const pool = new SlotPool(model, { contextSize, kv: o.kv, rotation: o.rotation, kvWindow: o.kvWindow, kvSinks: o.kvSinks, kvExactFormat: o.kvExactFormat, parallel: o.parallel, queueLimit: o.queueLimit,
          contextShiftKeep: o.contextShift ? o.contextShift.keep + (model.tokenizer.addBos ? 1 : 0) : undefined,
        });
        this.loaded = { model, pool, template };
      } catch (e) {
        model.dispose();
        throw e;
      }
      this.state = "ready";
    } catch (e) {
      this.state = "failed";
      this.loadError = e as Error;
      throw e;
    }
  }

  get model(): Model | undefined {
    return this.loaded?.model;
  }

  get pool(): SlotPool | undefined {
    return this.loaded?.pool;
  }

  get chatTemplateSource(): ModelChatTemplate["source"] | undefined {
    return this.loaded?.template.source;
  }

  /**
   * Stop gracefully (SIGTERM): refuse new connections and requests (503), let the requests in flight finish within
   * `graceMs`, then end the ones still generating (their streams close with finish_reason "stop" and [DONE]) and close.
   */
  async shutdown(graceMs = 3000): Promise<void> {
    this.stopping = true;
    this.server.close();
    const deadline = performance.now() + graceMs;
    while ((this.loaded?.pool.busyCount ?? 0) > 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    for (const c of this.inFlight) c.abort();
    while ((this.loaded?.pool.busyCount ?? 0) > 0 && performance.now() < deadline + 1000) await new Promise((r) => setTimeout(r, 20));
    await this.close();
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    this.loaded?.pool.dispose();
    this.loaded?.model.dispose();
    this.loaded = undefined;
  }

  // ---- requests ---------------------------------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://localhost");
    const route = url.pathname.replace(/\/+$/, "") || "/";
    let endpoint = "other";
    try {
      res.setHeader("Access-Control-Allow-Origin", "*");
      if (req.method === "OPTIONS") {
        res.writeHead(204, { "Access-Control-Allow-Methods": "GET, POST, OPTIONS", "Access-Control-Allow-Headers": "Content-Type, Authorization" }).end();
        return;
      }
      if (route === "/health" || route === "/v1/health") {
        endpoint = "health";
        this.requireMethod(req, "GET");
        if (this.state === "ready") return this.json(res, 200, { status: "ok" });
        const message = this.state === "loading" ? "Loading model" : `the model failed to load: ${this.loadError?.message}`;
        throw new RequestError(503, message, null, "unavailable_error");
      }
      if (this.stopping) throw new RequestError(503, "the server is shutting down", null, "unavailable_error");
      // the chat page (dist/web) at / : public like llama-server's, its API calls carry the key
      const page = req.method === "GET" || req.method === "HEAD" ? staticFileOf(this.pageMounts, url.pathname) : undefined;
      if (page) {
        endpoint = "page";
        return sendStaticFile(req, res, page);
      }
      this.checkApiKey(req);
      const routes: Record<string, () => Promise<void> | void> = {
        "/v1/models": () => this.models(req, res),
        "/models": () => this.models(req, res),
        "/v1/chat/completions": () => this.generation(req, res, "chat"),
        "/chat/completions": () => this.generation(req, res, "chat"),
        "/v1/completions": () => this.generation(req, res, "completion"),
        "/completions": () => this.generation(req, res, "completion"),
        "/tokenize": () => this.tokenize(req, res),
        "/detokenize": () => this.detokenize(req, res),
        "/props": () => this.props(req, res),
        "/slots": () => this.slots(req, res),
        "/metrics": () => this.metricsText(req, res),
      };
      const slotAction = /^\/slots\/(\d+)$/.exec(route);
      endpoint = slotAction ? "/slots/{id}" : route in routes ? route : "unknown";
      if (slotAction) return await this.slotAction(req, res, Number(slotAction[1]), url.searchParams.get("action"));
      const handler = routes[route];
      if (!handler) throw new RequestError(404, `no endpoint ${route}; see /v1/chat/completions, /v1/completions, /v1/models, /health, /props, /slots, /tokenize, /detokenize, /metrics`);
      await handler();
    } catch (e) {
      this.fail(res, e);
    } finally {
      this.metrics.requests.inc({ endpoint, status: String(res.statusCode) });
    }
  }

  private fail(res: http.ServerResponse, e: unknown): void {
    const err = e instanceof RequestError ? e : new RequestError(500, `internal error: ${(e as Error)?.message ?? String(e)}`);
    if (!res.headersSent) {
      if (err.status === 503) res.setHeader("Retry-After", "1");
      this.json(res, err.status, err.toJSON());
    } else if (!res.writableEnded) {
      // a stream already started: an error event, then the end of the stream
      res.write(`data: ${JSON.stringify(err.toJSON())}\n\n`);
      res.end();
    }
  }

  private json(res: http.ServerResponse, status: number, value: unknown): void {
    const body = JSON.stringify(value);
    res.writeHead(status, { "Content-Type": "application/json; charset=utf-8", "Content-Length": Buffer.byteLength(body) });
    res.end(body);
  }

  private requireMethod(req: http.IncomingMessage, method: "GET" | "POST"): void {
    if (req.method !== method) throw new RequestError(405, `${req.method} is not allowed here; use ${method}`);
  }

  private checkApiKey(req: http.IncomingMessage): void {
    const key = this.opts.apiKey;
    if (key === undefined) return;
    const given = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1]?.trim();
    if (given !== key) throw new RequestError(401, given === undefined ? "missing API key: send 'Authorization: Bearer <key>'" : "invalid API key");
  }

  private ready(): Loaded {
    if (this.state !== "ready" || !this.loaded) {
      throw new RequestError(503, this.state === "loading" ? "Loading model" : `the model failed to load: ${this.loadError?.message}`, null, "unavailable_error");
    }
    return this.loaded;
  }

  private async body(req: http.IncomingMessage): Promise<unknown> {
    const limit = this.opts.maxBodyBytes ?? 16 * 1024 * 1024;
    const tooLarge = () => new RequestError(413, `the request body is larger than ${limit} bytes`);
    if (Number(req.headers["content-length"] ?? 0) > limit) {
      req.resume(); // read and drop the body, so the answer reaches the client
      throw tooLarge();
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size <= limit) chunks.push(chunk as Buffer); // past the limit the rest is read and dropped
    }
    if (size > limit) throw tooLarge();
    const text = Buffer.concat(chunks).toString("utf8");
    if (text.trim() === "") throw new RequestError(400, "the request body is empty; send a JSON object");
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new RequestError(400, `the request body is not valid JSON: ${(e as Error).message}`);
    }
  }

  private models(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requireMethod(req, "GET");
    const { model } = this.ready();
    this.json(res, 200, {
      object: "list",
      data: [{ id: this.alias, object: "model", created: nowSeconds(), owned_by: "kvsplit", meta: { n_ctx_train: model.config.contextLength, n_vocab: model.config.nVocab, n_layer: model.config.nLayers } }],
    });
  }

  private async tokenize(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requireMethod(req, "POST");
    const { model } = this.ready();
    const body = (await this.body(req)) as Record<string, unknown>;
    if (typeof body?.content !== "string") throw new RequestError(400, "'content' must be a string", "content");
    const addSpecial = body.add_special === undefined ? false : body.add_special === true;
    const tokens = model.tokenizer.encode(body.content, { addSpecial, parseSpecial: true });
    if (body.with_pieces === true) {
      this.json(res, 200, { tokens: tokens.map((id) => ({ id, piece: new TextDecoder().decode(model.tokenizer.tokenBytes(id, true)) })) });
    } else this.json(res, 200, { tokens });
  }

  private async detokenize(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requireMethod(req, "POST");
    const { model } = this.ready();
    const body = (await this.body(req)) as Record<string, unknown>;
    const tokens = this.tokenIds(body?.tokens, model, "tokens");
    this.json(res, 200, { content: model.tokenizer.decode(tokens) });
  }

  private tokenIds(value: unknown, model: Model, param: string): number[] {
    const n = model.config.nVocab;
    if (!Array.isArray(value) || !value.every((t) => Number.isInteger(t) && t >= 0 && t < n)) {
      throw new RequestError(400, `'${param}' must be an array of token ids from 0 to ${n - 1}`, param);
    }
    return value as number[];
  }

  private props(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requireMethod(req, "GET");
    const { model, pool, template } = this.ready();
    const session = pool.slots[0]!.session;
    this.json(res, 200, {
      model_path: this.opts.modelPath,
      model_alias: this.alias,
      total_slots: pool.slots.length,
      n_ctx: pool.contextSize,
      n_ctx_train: model.config.contextLength,
      n_ubatch: model.batchSize, // tokens one step takes over every slot (-b)
      kv: {
        config: this.opts.kvName,
        rotation: session.rotation,
        exact_format: session.kvExactFormat,
        layers: session.kv.map((p, layer) => ({ layer, k: p.k, v: p.v, ...(p.kLayout ? { k_layout: p.kLayout } : {}), window: p.window ?? session.kvWindow, sinks: p.sinks ?? session.kvSinks })),
        bytes_per_slot: pool.slotKvBytes,
        // per position: the whole cache over its context (scales, exact windows included), and an f16/f16 cache's
        bytes_per_token: pool.slotKvBytes / pool.contextSize,
        f16_bytes_per_token: model.config.nLayers * model.config.kvDim * 2 * 2,
        bytes_total: pool.slotKvBytes * pool.slots.length,
      },
      chat_template: template.template.source,
      chat_template_source: template.source,
      bos_token: template.template.bosToken,
      eos_token: template.template.eosToken,
    });
  }

  private slots(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.requireMethod(req, "GET");
    const { pool } = this.ready();
    this.json(res, 200, pool.slots.map((s) => ({ id: s.id, n_ctx: pool.contextSize, is_processing: s.busy, n_past: s.session.position, cache_tokens: s.session.position, requests_served: s.served, kv_bytes: s.session.kvBytes })));
  }

  private async slotAction(req: http.IncomingMessage, res: http.ServerResponse, id: number, action: string | null): Promise<void> {
    this.requireMethod(req, "POST");
    const { pool } = this.ready();
    const slot = pool.slots[id];
    if (!slot) throw new RequestError(404, `no slot ${id}; slots are 0 to ${pool.slots.length - 1}`);
    if (action !== "erase" && action !== "save" && action !== "restore") throw new RequestError(400, `action '${action}': supported: save, restore, erase`, "action");
    if (slot.busy) throw new RequestError(409, `slot ${id} is working on a request`);
    if (action === "erase") {
      const erased = slot.session.position;
      slot.erase();
      return this.json(res, 200, { id_slot: id, n_erased: erased });
    }
    const dir = this.opts.slotSavePath;
    if (dir === undefined) throw new RequestError(400, `action '${action}' needs a folder for state files: start the server with --slot-save-path DIR`, "action");
    const body = (await this.body(req)) as Record<string, unknown>;
    const filename = body?.filename;
    if (typeof filename !== "string" || !/^[\w][\w.-]*$/.test(filename) || filename.includes("..")) {
      throw new RequestError(400, "'filename' must be a plain file name (letters, digits, '_', '-', '.'; no folders)", "filename");
    }
    const file = path.join(dir, filename);
    const start = performance.now();
    if (action === "save") {
      const bytes = slot.session.saveState(file);
      return this.json(res, 200, { id_slot: id, filename, n_saved: slot.session.position, n_written: bytes, timings: { save_ms: performance.now() - start } });
    }
    try {
      slot.session.loadState(file);
    } catch (e) {
      slot.erase();
      if (e instanceof StateFileError) throw new RequestError(400, e.message, "filename");
      throw e;
    }
    this.json(res, 200, { id_slot: id, filename, n_restored: slot.session.position, n_read: statSync(file).size, timings: { restore_ms: performance.now() - start } });
  }

  private async metricsText(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    this.requireMethod(req, "GET");
    const text = await this.metrics.registry.metrics();
    res.writeHead(200, { "Content-Type": this.metrics.registry.contentType });
    res.end(text);
  }

  // ---- generation -------------------------------------------------------------------------------------------------

  private async generation(req: http.IncomingMessage, res: http.ServerResponse, kind: "chat" | "completion"): Promise<void> {
    this.requireMethod(req, "POST");
    const { model, pool, template } = this.ready();
    const raw = await this.body(req);
    const job = kind === "chat" ? parseChatRequest(raw) : parseCompletionRequest(raw);
    const prompt = this.promptTokens(job, model, template);
    if (prompt.length === 0) throw new RequestError(400, "the prompt has no tokens", kind === "chat" ? "messages" : "prompt");
    let sampler: Sampler;
    try {
      sampler = new Sampler(job.sampling);
    } catch (e) {
      throw new RequestError(400, (e as Error).message);
    }
    const abort = new AbortController();
    let clientGone = false;
    res.on("close", () => {
      if (res.writableFinished) return;
      clientGone = true;
      abort.abort();
    });
    this.inFlight.add(abort);
    res.on("close", () => this.inFlight.delete(abort));
    const slot = await pool.acquire(prompt, abort.signal);
    try {
      const run = pool.run(slot, prompt, { maxTokens: job.maxTokens, sampler, stop: job.stop, signal: abort.signal, logprobs: job.logprobs });
      const id = `${kind === "chat" ? "chatcmpl" : "cmpl"}-${randomBytes(12).toString("hex")}`;
      const created = nowSeconds();
      const model_ = job.model ?? this.alias;
      const pieces: StreamPiece[] = [];
      if (job.stream) {
        res.writeHead(200, { "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache", Connection: "keep-alive" });
        const send = (value: unknown) => {
          if (!res.destroyed) res.write(`data: ${JSON.stringify(value)}\n\n`);
        };
        if (kind === "chat") send(this.chunk(id, created, model_, kind, { role: "assistant", content: "" }, null, undefined));
        for await (const piece of run.stream) {
          if (piece.text === "" && piece.logprob === undefined) continue;
          send(this.chunk(id, created, model_, kind, kind === "chat" ? { content: piece.text } : piece.text, null, this.logprobsOf(kind, [piece], model)));
        }
        const r = run.result()!;
        const last = this.chunk(id, created, model_, kind, kind === "chat" ? {} : "", finishReason(r.stopReason), undefined) as Record<string, unknown>;
        last.timings = timingsOf(r.promptEvaluated, r.promptMs, r.tokens.length, r.genMs, run.cacheN);
        send(last);
        if (job.streamUsage) send({ id, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", created, model: model_, choices: [], usage: this.usage(prompt.length, r) });
        if (!res.destroyed) res.end("data: [DONE]\n\n");
        this.count(r, run.cacheN);
      } else {
        for await (const piece of run.stream) pieces.push(piece);
        const r = run.result()!;
        this.count(r, run.cacheN);
        if (clientGone) return;
        const logprobs = this.logprobsOf(kind, pieces, model);
        const choice =
          kind === "chat"
            ? { index: 0, message: { role: "assistant", content: r.text }, logprobs: logprobs ?? null, finish_reason: finishReason(r.stopReason) }
            : { index: 0, text: r.text, logprobs: logprobs ?? null, finish_reason: finishReason(r.stopReason) };
        this.json(res, 200, {
          id, object: kind === "chat" ? "chat.completion" : "text_completion", created, model: model_, choices: [choice],
          usage: this.usage(prompt.length, r),
          timings: timingsOf(r.promptEvaluated, r.promptMs, r.tokens.length, r.genMs, run.cacheN),
        });
      }
    } finally {
      pool.release(slot);
    }
  }

  private promptTokens(job: GenerationJob, model: Model, template: ModelChatTemplate): number[] {
    if (job.kind === "chat") {
      let text: string;
      try {
        text = template.template.render(job.messages!, { addGenerationPrompt: true });
      } catch (e) {
        throw new RequestError(400, (e as Error).message, "messages");
      }
      return chatPromptTokens(model.tokenizer, text);
    }
    if (typeof job.prompt === "string") return model.tokenizer.encode(job.prompt, { addSpecial: true, parseSpecial: true });
    return this.tokenIds(job.prompt, model, "prompt");
  }

  private usage(promptTokens: number, r: StreamResult) {
    return { prompt_tokens: promptTokens, completion_tokens: r.tokens.length, total_tokens: promptTokens + r.tokens.length };
  }

  private count(r: StreamResult, cacheN: number): void {
    this.metrics.promptTokens.inc(r.promptEvaluated);
    this.metrics.promptCachedTokens.inc(cacheN);
    this.metrics.predictedTokens.inc(r.tokens.length);
    this.metrics.promptSeconds.inc(r.promptMs / 1000);
    this.metrics.predictedSeconds.inc(r.genMs / 1000);
  }

  private chunk(id: string, created: number, model: string, kind: "chat" | "completion", delta: object | string, finish: string | null, logprobs: unknown): object {
    const choice =
      kind === "chat"
        ? { index: 0, delta, logprobs: logprobs ?? null, finish_reason: finish }
        : { index: 0, text: delta as string, logprobs: logprobs ?? null, finish_reason: finish };
    return { id, object: kind === "chat" ? "chat.completion.chunk" : "text_completion", created, model, choices: [choice] };
  }

  /** OpenAI logprobs of these pieces: chat {content: [...]}, completions {tokens, token_logprobs, top_logprobs}. */
  private logprobsOf(kind: "chat" | "completion", pieces: readonly StreamPiece[], model: Model): object | undefined {
    const withProbs = pieces.filter((p) => p.logprob !== undefined);
    if (withProbs.length === 0) return undefined;
    const bytes = (id: number) => model.tokenizer.tokenBytes(id, true);
    const text = (id: number) => new TextDecoder().decode(bytes(id));
    const entry = (t: TokenLogprob) => ({ token: text(t.token), logprob: t.logprob, bytes: Array.from(bytes(t.token)) });
    if (kind === "chat") return { content: withProbs.map((p) => ({ ...entry(p.logprob!), top_logprobs: p.topLogprobs!.map(entry) })) };
    return {
      tokens: withProbs.map((p) => text(p.token)),
      token_logprobs: withProbs.map((p) => p.logprob!.logprob),
      top_logprobs: withProbs.map((p) => Object.fromEntries(p.topLogprobs!.map((t) => [text(t.token), t.logprob]))),
    };
  }
}

/** Listen, then load the model and create the slots. */
export async function startServer(opts: ServerOptions): Promise<{ server: KvsplitServer; url: string }> {
  const server = new KvsplitServer(opts);
  const url = await server.listen();
  try {
    server.load();
  } catch (e) {
    await server.close();
    throw e;
  }
  return { server, url };
}
