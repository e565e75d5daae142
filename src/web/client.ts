/**
 * kvsplit in a web page (dist/web/kvsplit.js): the engine runs in a dedicated worker (engine-worker.js beside this
 * file) with its kernel threads; this class talks to it.
 *
 *   const engine = await KvsplitEngine.create({ threads: 2 });
 *   await engine.load({ url: "/models/tinystories.gguf" }, { kv: "K8V4" }, (p) => bar.value = p.done / p.total);
 *   for await (const piece of engine.complete("Once upon a time", { maxTokens: 64 })) out.textContent += piece.text;
 *
 * Threads need a cross-origin isolated page (Cross-Origin-Opener-Policy: same-origin, Cross-Origin-Embedder-Policy:
 * require-corp: the kernels share one WebAssembly memory); elsewhere the engine runs on one thread.
 */
import type { EngineEvent, EngineRequest, GenerateSettings, GenerationSummary, LoadSettings, ModelInfo, ModelSource } from "./protocol.js";

export type { GenerateSettings, GenerationSummary, LoadSettings, ModelInfo, ModelSource } from "./protocol.js";

export class EngineError extends Error {
  /**
   * @param loaded for a failed load: the model still loaded (the one before, when the new source failed before it was
   *   let go), or null when none is; undefined for other requests
   */
  constructor(name: string, message: string, readonly loaded?: ModelInfo | null) {
    super(message);
    this.name = name;
  }
}

export interface EngineOptions {
  /** Threads for the kernels (default: navigator.hardwareConcurrency, at most 8). */
  threads?: number;
  /** Where engine-worker.js and the kernels are (default: beside this module). */
  base?: string | URL;
}

export interface LoadProgress {
  /** "download": a URL's bytes into the browser's cache; "read": the weights into WebAssembly memory. */
  phase: "download" | "read";
  done: number;
  total: number;
}

export interface Piece {
  text: string;
  token: number;
  /** Tokens the cache holds after this one. */
  position: number;
}

/** A generation in progress: iterate its pieces; `summary` resolves when it ends (stopped ones too). */
export interface Generation extends AsyncIterable<Piece> {
  readonly summary: Promise<GenerationSummary>;
}

type Listener = (event: EngineEvent) => void;

export class KvsplitEngine {
  private nextId = 1;
  private readonly listeners = new Map<number, Listener>();

  /** Threads the kernels run on (1 where the page is not cross-origin isolated). */
  threads = 1;
  /** Whether the page is cross-origin isolated (else the engine runs on one thread). */
  crossOriginIsolated = false;
  /** "relaxed" or "plain": the SIMD kernel build this browser runs. */
  kernels = "";

  private constructor(private readonly worker: Worker) {
    worker.onmessage = (e: MessageEvent<EngineEvent>) => this.listeners.get(e.data.id)?.(e.data);
    // A worker script that fails to load or throws outside a request fails every request waiting on it.
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      for (const [id, listener] of this.listeners) listener({ type: "error", id, name: "EngineError", message: `the engine worker failed: ${e.message || "its script did not load"}` });
    };
  }

  static async create(opts: EngineOptions = {}): Promise<KvsplitEngine> {
    const base = new URL(opts.base ?? ".", import.meta.url);
    const engine = new KvsplitEngine(new Worker(new URL("engine-worker.js", base), { type: "module", name: "kvsplit-engine" }));
    const threads = opts.threads ?? Math.min(8, navigator.hardwareConcurrency || 1);
    const ready = await engine.request({ type: "init", id: 0, threads, base: base.href }, () => {});
    if (ready.type !== "ready") throw new EngineError("EngineError", `unexpected answer ${ready.type}`);
    engine.threads = ready.threads;
    engine.crossOriginIsolated = ready.crossOriginIsolated;
    engine.kernels = ready.kernels;
    return engine;
  }

  /**
   * Load a model (replacing the loaded one) and create its session. A failure rejects with an EngineError whose
   * `loaded` names the model still loaded: the one before when the new source failed before replacing it (a URL that
   * cannot be fetched, a file that is not GGUF), else null.
   */
  async load(source: ModelSource, settings: LoadSettings = {}, onProgress?: (p: LoadProgress) => void): Promise<ModelInfo> {
    const answer = await this.request({ type: "load", id: 0, source, settings }, (e) => {
      if (e.type === "progress") onProgress?.({ phase: e.phase, done: e.done, total: e.total });
    });
    if (answer.type !== "loaded") throw new EngineError("EngineError", `unexpected answer ${answer.type}`);
    return answer.info;
  }

  /** Continue `prompt` (the cache keeps the longest prefix it already holds). */
  complete(prompt: string, settings: GenerateSettings = {}): Generation {
    return this.generation({ type: "complete", id: 0, prompt, settings });
  }

  /** One turn of the engine's conversation (created at the first call, with `system`; reset() starts a new one). */
  chat(message: string, settings: GenerateSettings & { system?: string } = {}): Generation {
    const { system, ...rest } = settings;
    return this.generation({ type: "chat", id: 0, message, system, settings: rest });
  }

  /** Stop the running generation (its summary says "aborted"). */
  stop(): void {
    this.worker.postMessage({ type: "stop" } satisfies EngineRequest);
  }

  /** Empty the cache and forget the conversation. */
  async reset(): Promise<void> {
    await this.request({ type: "reset", id: 0 }, () => {});
  }

  dispose(): void {
    this.worker.terminate();
  }

  private generation(request: Extract<EngineRequest, { type: "complete" | "chat" }>): Generation {
    const pieces: Piece[] = [];
    let wake: (() => void) | undefined;
    let ended = false;
    const summary = this.request(request, (e) => {
      if (e.type === "piece") pieces.push({ text: e.text, token: e.token, position: e.position });
      wake?.();
    }).then((e) => {
      if (e.type !== "done") throw new EngineError("EngineError", `unexpected answer ${e.type}`);
      return e.summary;
    }).finally(() => {
      ended = true;
      wake?.();
    });
    summary.catch(() => {}); // the iterator rethrows it
    return {
      summary,
      async *[Symbol.asyncIterator]() {
        for (;;) {
          while (pieces.length > 0) yield pieces.shift()!;
          if (ended) break;
          await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
        await summary;
      },
    };
  }

  /** Send a request; `onEvent` sees its intermediate events; resolves with its final one, rejects with its error. */
  private request(request: Exclude<EngineRequest, { type: "stop" }>, onEvent: Listener): Promise<EngineEvent> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.listeners.set(id, (e) => {
        if (e.type === "progress" || e.type === "piece") return onEvent(e);
        this.listeners.delete(id);
        if (e.type === "error") reject(new EngineError(e.name, e.message, e.loaded));
        else resolve(e);
      });
      this.worker.postMessage({ ...request, id });
    });
  }
}
