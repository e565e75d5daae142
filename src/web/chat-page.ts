/**
 * The chat page (web/index.html → chat.js): talks to the engine in the page (local mode, client.ts) or to
 * `kvsplit serve`'s OpenAI API (remote mode, streamed), and shows the K/V config per layer, a gauge of the KV bytes
 * the conversation holds against what an f16 cache would hold, and tokens/s. Opened from `kvsplit serve` it starts in
 * remote mode. `?mode=local&model=URL&kv=K8V4&ctx=2048` loads a model at once.
 * `document.body.dataset.state` says what it is doing: idle, loading, ready, generating or error.
 */
import { EngineError, KvsplitEngine, type ModelInfo } from "./client.js";

type Mode = "local" | "remote";
interface KvView {
  layers: Array<{ k: string; v: string }>;
  bytesPerToken: number;
  f16BytesPerToken: number;
  contextSize: number;
  title: string;
}

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
let mode: Mode = "local";
let engine: KvsplitEngine | undefined;
let view: KvView | undefined;
let remoteBase = "";
let remoteMessages: Array<{ role: string; content: string }> = [];
let remoteAbort: AbortController | undefined;
/** Whose conversation the transcript shows: the mode of the last model loaded or server connected. */
let transcriptOf: Mode | undefined;

/** The page's state and its status line (shown as an error in state error, or when `warning` says so). */
function setState(state: "idle" | "loading" | "ready" | "generating" | "error", text: string, warning = false): void {
  document.body.dataset.state = state;
  const status = $("status");
  status.textContent = text;
  status.className = state === "error" || warning ? "error" : "";
  const canSend = state === "ready";
  ($("message") as HTMLTextAreaElement).disabled = !canSend && state !== "generating";
  ($("send") as HTMLButtonElement).disabled = !canSend;
  ($("stop") as HTMLButtonElement).disabled = state !== "generating";
  ($("new-chat") as HTMLButtonElement).disabled = !canSend;
}

function failed(e: unknown): void {
  setState("error", e instanceof Error ? e.message : String(e));
}

function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(2)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

function addMessage(role: "user" | "assistant" | "note", text: string): HTMLElement {
  const el = document.createElement("div");
  el.className = `msg ${role}`;
  el.textContent = text;
  $("transcript").append(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

function showKv(v: KvView): void {
  view = v;
  const body = $("layers").querySelector("tbody")!;
  body.replaceChildren(...v.layers.map((l, i) => {
    const tr = document.createElement("tr");
    for (const cell of [String(i), l.k, l.v]) tr.append(Object.assign(document.createElement("td"), { textContent: cell }));
    return tr;
  }));
  $("model-info").textContent = v.title;
  $("speed").textContent = "–"; // until this model has answered
  showPosition(0);
}

/** No model: the side panel (layers, gauge, speed, model line) emptied, so nothing of a model that is gone stays. */
function clearModel(): void {
  view = undefined;
  $("layers").querySelector("tbody")!.replaceChildren();
  $("model-info").textContent = "";
  $("gauge-f16").style.width = "0%";
  $("gauge-kv").style.width = "0%";
  $("kv-text").textContent = "–";
  $("speed").textContent = "–";
}

/** The gauge: bytes the cached tokens take in this cache (green) over what f16/f16 would take (grey). */
function showPosition(position: number): void {
  if (!view) return;
  const used = position * view.bytesPerToken;
  const f16 = position * view.f16BytesPerToken;
  const full = view.contextSize * view.f16BytesPerToken;
  $("gauge-f16").style.width = `${(100 * f16) / full}%`;
  $("gauge-kv").style.width = `${(100 * used) / full}%`;
  $("kv-text").textContent = `${position} / ${view.contextSize} tokens: ${bytes(used)} (F16 would need ${bytes(f16)}; ` +
    `${(view.bytesPerToken / view.f16BytesPerToken).toFixed(2)}×). Full context: ${bytes(view.contextSize * view.bytesPerToken)}.`;
}

function showSpeed(genTokens: number, genMs: number, promptTokens: number, promptMs: number, cached: number): void {
  const rate = (n: number, ms: number) => (ms > 0 ? ((n * 1000) / ms).toFixed(1) : "–");
  $("speed").textContent = `${rate(genTokens, genMs)} tokens/s generating (${genTokens} tokens) · ${rate(promptTokens, promptMs)} tokens/s prompt (${promptTokens} tokens, ${cached} cached)`;
}

// ---- local mode: the engine in this page ----------------------------------------------------------------------------

async function loadLocal(source: { url: string } | { file: File }): Promise<void> {
  const threads = Number(($("threads") as HTMLInputElement).value) || 2;
  setState("loading", "Starting the engine…");
  try {
    if (!engine || engine.threads !== threads) {
      engine?.dispose(); // and the model it held
      clearModel();
      engine = await KvsplitEngine.create({ threads });
    }
    const bar = $("progress") as HTMLProgressElement;
    const info: ModelInfo = await engine.load(source, {
      kv: ($("kv") as HTMLSelectElement).value,
      contextSize: Number(($("ctx") as HTMLInputElement).value) || undefined,
    }, (p) => {
      bar.value = p.total > 0 ? p.done / p.total : 0;
      $("progress-text").textContent = `${p.phase === "download" ? "Downloading" : "Reading weights"}: ${bytes(p.done)} of ${bytes(p.total)}`;
      setState("loading", p.phase === "download" ? "Downloading the model…" : "Loading the weights…");
    });
    loadedLine(`${info.name}: ${info.fromCache ? "from this browser's cache" : "loaded"}`);
    showLocalModel(info);
    startConversation("local");
    if (info.contextWarning) addMessage("note", info.contextWarning);
    setState("ready", `Ready: ${info.name} in this page (${info.kvConfig})`);
    ($("message") as HTMLTextAreaElement).focus();
  } catch (e) {
    const kept = e instanceof EngineError ? e.loaded : undefined;
    if (kept) {
      // the new source failed before the loaded model was let go: say so, and go on with that one (its conversation too)
      loadedLine(`${kept.name}: still loaded`);
      if (!view) showLocalModel(kept); // the panel was emptied (a trip to remote mode)
      setState("ready", `${(e as Error).message} (still loaded: ${kept.name}, ${kept.kvConfig})`, true);
      return;
    }
    clearModel();
    ($("progress") as HTMLProgressElement).value = 0;
    $("progress-text").textContent = "";
    endConversation("local", "its model was let go before the new one failed to load");
    failed(e);
  }
}

/** A new model or server: an empty transcript, its conversation. */
function startConversation(of: Mode): void {
  $("transcript").replaceChildren();
  transcriptOf = of;
}

/** A note under the conversation whose model (local) or server (remote) is gone: kept for reading, not continued. */
function endConversation(of: Mode, why: string): void {
  if (transcriptOf !== of) return;
  transcriptOf = undefined;
  if ($("transcript").childElementCount > 0) addMessage("note", `This conversation has ended: ${why}.`);
}

/** The progress line once a load has ended with a model in use. */
function loadedLine(text: string): void {
  ($("progress") as HTMLProgressElement).value = 1;
  $("progress-text").textContent = text;
}

/** The model panel for the model loaded in this page. */
function showLocalModel(info: ModelInfo): void {
  showKv({
    layers: info.kvLayers, bytesPerToken: info.kvBytesPerToken, f16BytesPerToken: info.f16BytesPerToken, contextSize: info.contextSize,
    title: `${info.name}: ${info.architecture}, ${info.layers} layers, ${info.kvConfig} cache of ${bytes(info.kvBytes)} for ${info.contextSize} tokens; ${info.threads} threads, ${info.kernels} SIMD kernels; chat template: ${info.chatTemplate}.`,
  });
}

async function sendLocal(text: string, out: HTMLElement): Promise<void> {
  const generation = engine!.chat(text, { maxTokens: 256, temperature: 0.7, topP: 0.9 });
  const start = performance.now();
  let count = 0;
  for await (const piece of generation) {
    out.textContent += out.textContent === "" ? piece.text.trimStart() : piece.text;
    count++;
    showPosition(piece.position);
    if (count % 4 === 0) showSpeed(count, performance.now() - start, 0, 0, 0);
  }
  const s = await generation.summary;
  showPosition(s.position);
  showSpeed(s.genTokens, s.genMs, s.promptTokens, s.promptMs, s.cachedTokens);
  if (s.stopReason === "aborted") addMessage("note", "stopped");
}

// ---- remote mode: kvsplit serve's OpenAI API ------------------------------------------------------------------------

/** The Authorization header for `kvsplit serve --api-key`, when a key is given. */
function authHeaders(): Record<string, string> {
  const key = ($("api-key") as HTMLInputElement).value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** The server's error message (an OpenAI error object) or the status. */
async function httpError(response: Response, what: string): Promise<Error> {
  const body = await response.json().catch(() => undefined);
  return new Error(`${what}: ${body?.error?.message ?? `HTTP ${response.status}`}`);
}

async function connectRemote(base: string): Promise<void> {
  setState("loading", `Connecting to ${base}…`);
  try {
    const response = await fetch(new URL("props", base), { headers: authHeaders() });
    if (!response.ok) throw await httpError(response, base);
    const props = await response.json();
    remoteBase = base;
    remoteMessages = [];
    const kv = props.kv;
    showKv({
      layers: kv.layers, bytesPerToken: kv.bytes_per_token, f16BytesPerToken: kv.f16_bytes_per_token, contextSize: props.n_ctx,
      title: `${props.model_alias} on ${base}: ${kv.config} cache, ${props.total_slots} slot${props.total_slots === 1 ? "" : "s"} of ${bytes(kv.bytes_per_slot)} (${props.n_ctx} tokens each).`,
    });
    startConversation("remote");
    setState("ready", `Ready: ${props.model_alias} on kvsplit serve (${kv.config})`);
    ($("message") as HTMLTextAreaElement).focus();
  } catch (e) {
    remoteBase = "";
    endConversation("remote", "its server was left for one that could not be reached");
    clearModel();
    failed(e);
  }
}

async function sendRemote(text: string, out: HTMLElement): Promise<void> {
  remoteMessages.push({ role: "user", content: text });
  remoteAbort = new AbortController();
  const start = performance.now();
  let count = 0;
  let answer = "";
  try {
    const response = await fetch(new URL("v1/chat/completions", remoteBase), {
      method: "POST",
      headers: { "Content-Type": "application/json", ...authHeaders() },
      body: JSON.stringify({ messages: remoteMessages, stream: true, stream_options: { include_usage: true }, max_tokens: 256, temperature: 0.7, top_p: 0.9 }),
      signal: remoteAbort.signal,
    });
    if (!response.ok || !response.body) throw await httpError(response, "kvsplit serve");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += value;
      let cut: number;
      while ((cut = buffered.indexOf("\n\n")) >= 0) {
        const event = buffered.slice(0, cut).replace(/^data: /, "");
        buffered = buffered.slice(cut + 2);
        if (event === "[DONE]") continue;
        const chunk = JSON.parse(event);
        if (chunk.error) throw new Error(chunk.error.message);
        const delta: string = chunk.choices?.[0]?.delta?.content ?? "";
        if (delta) {
          answer += delta;
          out.textContent += out.textContent === "" ? delta.trimStart() : delta;
          count++;
          showSpeed(count, performance.now() - start, 0, 0, 0);
        }
        const t = chunk.timings;
        if (t) showSpeed(t.predicted_n, t.predicted_ms, t.prompt_n, t.prompt_ms, t.cache_n);
        if (chunk.usage) showPosition(chunk.usage.prompt_tokens + chunk.usage.completion_tokens);
      }
    }
  } catch (e) {
    if ((e as Error).name !== "AbortError") {
      remoteMessages.pop(); // the failed turn leaves the history as it was
      throw e;
    }
    addMessage("note", "stopped");
  } finally {
    remoteAbort = undefined;
  }
  remoteMessages.push({ role: "assistant", content: answer });
}

// ---- wiring ---------------------------------------------------------------------------------------------------------

async function send(): Promise<void> {
  const box = $("message") as HTMLTextAreaElement;
  const text = box.value.trim();
  if (!text || document.body.dataset.state !== "ready") return;
  box.value = "";
  addMessage("user", text);
  const out = addMessage("assistant", "");
  setState("generating", "Answering…");
  try {
    await (mode === "local" ? sendLocal(text, out) : sendRemote(text, out));
    setState("ready", "Ready");
  } catch (e) {
    failed(e);
  }
}

function setMode(next: Mode): void {
  mode = next;
  for (const input of document.querySelectorAll<HTMLInputElement>("input[name=mode]")) input.checked = input.value === next;
  $("local-setup").hidden = next !== "local";
  $("remote-setup").hidden = next !== "remote";
  clearModel();
  setState("idle", next === "local" ? "Choose a model to run in this page" : "Connect to a kvsplit server");
}

function wire(): void {
  for (const input of document.querySelectorAll<HTMLInputElement>("input[name=mode]")) input.onchange = () => setMode(input.value as Mode);
  ($("file") as HTMLInputElement).onchange = () => {
    const file = ($("file") as HTMLInputElement).files?.[0];
    if (file) void loadLocal({ file });
  };
  $("load").onclick = () => {
    const url = ($("url") as HTMLInputElement).value.trim();
    const file = ($("file") as HTMLInputElement).files?.[0];
    if (url) void loadLocal({ url });
    else if (file) void loadLocal({ file });
    else failed(new Error("choose a .gguf file or give its URL first"));
  };
  const drop = $("drop");
  drop.ondragover = (e) => {
    e.preventDefault();
    drop.classList.add("over");
  };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    const file = e.dataTransfer?.files[0];
    if (file) void loadLocal({ file });
  };
  $("connect").onclick = () => void connectRemote(new URL(($("server") as HTMLInputElement).value || location.origin, location.href).href);
  ($("composer") as HTMLFormElement).onsubmit = (e) => {
    e.preventDefault();
    void send();
  };
  $("message").onkeydown = (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      void send();
    }
  };
  $("stop").onclick = () => (mode === "local" ? engine?.stop() : remoteAbort?.abort());
  $("new-chat").onclick = async () => {
    startConversation(mode);
    showPosition(0);
    if (mode === "local") await engine?.reset();
    else remoteMessages = [];
  };
}

/** kvsplit serve answers /props beside this page: start there in remote mode. */
async function servedByKvsplit(): Promise<boolean> {
  try {
    const response = await fetch("props");
    if (response.status === 401) return true; // a server with --api-key: connect once a key is given
    return response.ok && (await response.json())?.kv !== undefined;
  } catch {
    return false;
  }
}

async function main(): Promise<void> {
  wire();
  ($("server") as HTMLInputElement).value = location.origin + "/";
  for (const [key, id] of [["kv", "kv"], ["ctx", "ctx"], ["threads", "threads"], ["model", "url"]] as const) {
    const value = params.get(key);
    if (value !== null) ($(id) as HTMLInputElement).value = value;
  }
  const wanted = params.get("mode");
  const remote = wanted === "remote" || (wanted !== "local" && (await servedByKvsplit()));
  setMode(remote ? "remote" : "local");
  if (remote) await connectRemote(location.origin + "/"); // with --api-key this asks for the key, then Connect
  else if (params.get("model")) await loadLocal({ url: params.get("model")! });
  if (mode === "local" && !self.crossOriginIsolated && document.body.dataset.state === "idle") {
    $("status").textContent += " (one thread: this page is not cross-origin isolated; serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp for threads)";
  }
}

void main();
