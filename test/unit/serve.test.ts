/**
 * The OpenAI-compatible server against the official `openai` client, on a small synthetic model: chat and text
 * completions (streamed and not) give the library's greedy tokens; usage, llama-server timings and prompt caching
 * (cache_n); logprobs; parallel slots serving at once; --memory sizing; /health 503 while loading; /v1/models,
 * /tokenize, /detokenize, /props, /slots, /metrics; and bad requests answered with an HTTP 4xx and an error object
 * while the server keeps serving.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { useModelDir } from "../helpers/model-dir.js";
import { KvsplitServer } from "../../src/serve/http.js";
import { SlotPool } from "../../src/serve/slots.js";
import { loadModel, type Model } from "../../src/model/model.js";
import { generate } from "../../src/model/generate.js";
import { Sampler } from "../../src/model/sampler.js";
import { chatPromptTokens, chatTemplateOf } from "../../src/chat/model-template.js";
import type { ChatMessage } from "../../src/chat/template.js";

const md = useModelDir("serve", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 256 }, 33);
const KEY = "sk-test";
const KV = { k: "q8_0", v: "q4_0" } as const;
let server: KvsplitServer;
let url: string;
let client: OpenAI;
let reference: Model;

before(async () => {
  server = new KvsplitServer({ modelPath: md.modelPath, port: 0, contextSize: 256, kv: KV, kvName: "K8V4", parallel: 2, apiKey: KEY, threads: 1, batchSize: 16, slotSavePath: md.dir }); // passes of 16 tokens: longer prompts span steps
  url = await server.listen();
  // /health answers 503 until the model is loaded
  const loading = await fetch(`${url}/health`);
  assert.equal(loading.status, 503);
  assert.match(((await loading.json()) as { error: { message: string } }).error.message, /Loading model/);
  server.load();
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 });
  reference = loadModel(md.modelPath, { threads: 1 });
});
after(async () => {
  await server.close();
  reference.dispose();
});

/** The library's greedy answer to these messages (a fresh session, the same template and K/V formats). */
function referenceChat(messages: ChatMessage[], maxTokens: number): { text: string; promptTokens: number; tokens: number[] } {
  const { template } = chatTemplateOf(reference.gguf, reference.tokenizer);
  const prompt = chatPromptTokens(reference.tokenizer, template.render(messages));
  const r = generate(reference.createSession({ contextSize: 256, kv: KV }), prompt, { maxTokens, sampler: new Sampler({ temperature: 0 }), isEog: (id) => reference.tokenizer.isEog(id) });
  return { text: reference.tokenizer.decode(r.tokens), promptTokens: prompt.length, tokens: r.tokens };
}

/** Our messages as the client's parameter type. */
const wire = (messages: ChatMessage[]) => messages as OpenAI.Chat.ChatCompletionMessageParam[];

const MESSAGES: ChatMessage[] = [
  { role: "system", content: "Be brief." },
  { role: "user", content: "Tell me a story about a cat." },
];

test("chat completion: the library's greedy answer, usage, timings, and the cached prompt the second time", async () => {
  const expected = referenceChat(MESSAGES, 10);
  const first = await client.chat.completions.create({ model: "anything", messages: wire(MESSAGES), max_tokens: 10, temperature: 0 });
  assert.equal(first.object, "chat.completion");
  assert.equal(first.model, "anything");
  assert.equal(first.choices[0]!.message.role, "assistant");
  assert.equal(first.choices[0]!.message.content, expected.text);
  assert.equal(first.choices[0]!.finish_reason, "length");
  assert.deepEqual(first.usage, { prompt_tokens: expected.promptTokens, completion_tokens: 10, total_tokens: expected.promptTokens + 10 });
  const timings = (first as unknown as { timings: Record<string, number> }).timings;
  assert.equal(timings.predicted_n, 10);
  assert.ok(timings.prompt_ms > 0 && timings.predicted_ms > 0);
  const again = await client.chat.completions.create({ model: "x", messages: wire(MESSAGES), max_tokens: 10, temperature: 0 });
  assert.equal(again.choices[0]!.message.content, expected.text);
  const t2 = (again as unknown as { timings: Record<string, number> }).timings;
  assert.equal(t2.cache_n, expected.promptTokens - 1, "all but the last prompt token come from the slot's cache");
  assert.equal(t2.prompt_n, 1);
});

test("streamed chat: the deltas join to the same answer, then finish_reason, timings, usage and [DONE]", async () => {
  const expected = referenceChat(MESSAGES, 12);
  const stream = await client.chat.completions.create({ model: "m", messages: wire(MESSAGES), max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true } });
  let text = "";
  let finish: string | null = null;
  let usage: unknown;
  let roles = 0;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    const choice = chunk.choices[0];
    if (!choice) continue;
    if (choice.delta.role) roles++;
    text += choice.delta.content ?? "";
    finish = choice.finish_reason ?? finish;
  }
  assert.equal(text, expected.text);
  assert.equal(roles, 1);
  assert.equal(finish, "length");
  assert.deepEqual(usage, { prompt_tokens: expected.promptTokens, completion_tokens: 12, total_tokens: expected.promptTokens + 12 });
  // the raw stream ends with data: [DONE]
  const raw = await fetch(`${url}/v1/chat/completions`, { method: "POST", headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" }, body: JSON.stringify({ messages: wire(MESSAGES), max_tokens: 3, stream: true }) });
  const body = await raw.text();
  assert.match(raw.headers.get("content-type") ?? "", /text\/event-stream/);
  assert.ok(body.trimEnd().endsWith("data: [DONE]"));
  assert.ok(body.split("\n\n").filter((l) => l.startsWith("data: {")).every((l) => JSON.parse(l.slice(6)) !== null));
});

test("text completion and stop strings: generate()'s text, cut before the stop string", async () => {
  const prompt = reference.tokenizer.encode("Once upon a time", { addSpecial: true, parseSpecial: true });
  const r = generate(reference.createSession({ contextSize: 256, kv: KV }), prompt, { maxTokens: 16, sampler: new Sampler({ temperature: 0 }) });
  const full = reference.tokenizer.decode(r.tokens);
  const c = await client.completions.create({ model: "m", prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
  assert.equal(c.choices[0]!.text, full);
  const stop = full.slice(5, 7);
  const cut = await client.completions.create({ model: "m", prompt: "Once upon a time", max_tokens: 16, temperature: 0, stop: [stop] });
  assert.equal(cut.choices[0]!.text, full.slice(0, full.indexOf(stop)));
  assert.equal(cut.choices[0]!.finish_reason, "stop");
  // token ids as the prompt
  const ids = await client.completions.create({ model: "m", prompt: prompt as unknown as string, max_tokens: 16, temperature: 0 });
  assert.equal(ids.choices[0]!.text, full);
});

test("logprobs: the sampled token's log-probability and the top alternatives (greedy: the top one)", async () => {
  const out = await client.chat.completions.create({ model: "m", messages: wire(MESSAGES), max_tokens: 4, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = out.choices[0]!.logprobs!.content!;
  assert.equal(content.length, 4);
  for (const e of content) {
    assert.ok(e.logprob <= 0);
    assert.equal(e.top_logprobs.length, 3);
    assert.equal(e.top_logprobs[0]!.logprob, e.logprob);
    assert.ok(e.top_logprobs[0]!.logprob >= e.top_logprobs[1]!.logprob && e.top_logprobs[1]!.logprob >= e.top_logprobs[2]!.logprob);
  }
  assert.equal(content.map((e) => e.token).join(""), out.choices[0]!.message.content);
});

test("two parallel streams are served at once and give their sequential answers", async () => {
  const a: ChatMessage[] = [{ role: "user", content: "Hello" }];
  const b: ChatMessage[] = [{ role: "user", content: "Why is the sky blue?" }];
  const [ea, eb] = [referenceChat(a, 14), referenceChat(b, 14)];
  const collect = async (messages: ChatMessage[]) => {
    let text = "";
    for await (const chunk of await client.chat.completions.create({ model: "m", messages: wire(messages), max_tokens: 14, temperature: 0, stream: true })) text += chunk.choices[0]?.delta.content ?? "";
    return text;
  };
  let busyBoth = false;
  const watch = setInterval(() => {
    if (server.pool!.busyCount === 2) busyBoth = true;
  }, 1);
  const [ta, tb] = await Promise.all([collect(a), collect(b)]);
  clearInterval(watch);
  assert.equal(ta, ea.text);
  assert.equal(tb, eb.text);
  assert.ok(busyBoth, "both slots worked at the same time");
  assert.ok(server.pool!.scheduler.widestStep >= 2, "their tokens shared forward passes");
});

test("--memory gives as many slots as fit", () => {
  const model = loadModel(md.modelPath, { threads: 1 });
  try {
    const one = new SlotPool(model, { contextSize: 128, kv: KV, parallel: 1 });
    const bytes = one.slotKvBytes;
    one.dispose();
    const pool = new SlotPool(model, { contextSize: 128, kv: KV, parallel: { memoryBytes: Math.floor(2.5 * bytes) } });
    assert.equal(pool.slots.length, 2);
    pool.dispose();
    assert.throws(() => new SlotPool(model, { contextSize: 128, kv: KV, parallel: { memoryBytes: bytes - 1 } }), /more than --memory/);
  } finally {
    model.dispose();
  }
});

test("models, tokenize / detokenize, props, slots, erase, metrics", async () => {
  const models = await client.models.list();
  assert.deepEqual(models.data.map((m) => m.id), ["model.gguf"]);
  const get = (path: string) => fetch(`${url}${path}`, { headers: { Authorization: `Bearer ${KEY}` } });
  const post = (path: string, body: unknown) => fetch(`${url}${path}`, { method: "POST", headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) });
  const tok = (await (await post("/tokenize", { content: "Once upon a time" })).json()) as { tokens: number[] };
  assert.deepEqual(tok.tokens, reference.tokenizer.encode("Once upon a time", { addSpecial: false, parseSpecial: true }));
  const detok = (await (await post("/detokenize", { tokens: tok.tokens })).json()) as { content: string };
  assert.equal(detok.content, reference.tokenizer.decode(tok.tokens));
  const props = (await (await get("/props")).json()) as { total_slots: number; n_ctx: number; n_ubatch: number; kv: { layers: { k: string; v: string }[]; bytes_per_slot: number; bytes_total: number }; chat_template_source: string };
  assert.equal(props.total_slots, 2);
  assert.equal(props.n_ctx, 256);
  assert.equal(props.n_ubatch, 16);
  assert.deepEqual(props.kv.layers.map((l) => [l.k, l.v]), [["q8_0", "q4_0"], ["q8_0", "q4_0"]]);
  assert.equal(props.kv.bytes_total, 2 * props.kv.bytes_per_slot);
  assert.equal(props.chat_template_source, "chatml");
  const slots = (await (await get("/slots")).json()) as { id: number; cache_tokens: number }[];
  assert.equal(slots.length, 2);
  const used = slots.find((s) => s.cache_tokens > 0)!;
  const erased = (await (await post(`/slots/${used.id}?action=erase`, {})).json()) as { n_erased: number };
  assert.equal(erased.n_erased, used.cache_tokens);
  assert.equal(server.pool!.slots[used.id]!.session.position, 0);
  const metrics = await (await get("/metrics")).text();
  const predicted = Number(/^kvsplit_tokens_predicted_total (\d+)/m.exec(metrics)?.[1]);
  assert.ok(predicted > 0, "tokens predicted are counted");
  assert.match(metrics, /^kvsplit_kv_cache_bytes \d+/m);
});

test("a slot's state saved and restored: the next request finds its prompt in the cache again", async () => {
  const post = (p: string, body: unknown) => fetch(`${url}${p}`, { method: "POST", headers: { Authorization: `Bearer ${KEY}` }, body: JSON.stringify(body) });
  const ask = () => client.chat.completions.create({ model: "m", messages: wire(MESSAGES), max_tokens: 4, temperature: 0 });
  const first = await ask();
  const slot = server.pool!.slots.find((s) => s.session.position > 0)!;
  const saved = (await (await post(`/slots/${slot.id}?action=save`, { filename: "slot.kvs" })).json()) as { n_saved: number; n_written: number };
  assert.equal(saved.n_saved, slot.session.position);
  assert.ok(saved.n_written > 0);
  for (const s of server.pool!.slots) await post(`/slots/${s.id}?action=erase`, {});
  const restored = (await (await post(`/slots/${slot.id}?action=restore`, { filename: "slot.kvs" })).json()) as { n_restored: number };
  assert.equal(restored.n_restored, saved.n_saved);
  const again = await ask();
  assert.equal(again.choices[0]!.message.content, first.choices[0]!.message.content);
  assert.ok((again as unknown as { timings: { cache_n: number } }).timings.cache_n > 0, "the restored cache is used");
  const bad = await post(`/slots/${slot.id}?action=save`, { filename: "../escape.kvs" });
  assert.equal(bad.status, 400);
  const missing = await post(`/slots/${slot.id}?action=restore`, { filename: "nothing.kvs" });
  assert.equal(missing.status, 400);
  assert.match(((await missing.json()) as { error: { message: string } }).error.message, /nothing\.kvs: cannot read/);
});

test("bad requests get a 4xx and an OpenAI error object; the server keeps serving", async () => {
  const post = (path: string, body: string, key = KEY) => fetch(`${url}${path}`, { method: "POST", headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" }, body });
  const expectError = async (r: Response, status: number, pattern: RegExp) => {
    assert.equal(r.status, status);
    const e = (await r.json()) as { error: { message: string; type: string; code: number } };
    assert.match(e.error.message, pattern);
    assert.equal(e.error.code, status);
  };
  await expectError(await post("/v1/chat/completions", "{not json"), 400, /not valid JSON/);
  await expectError(await post("/v1/chat/completions", "[]"), 400, /JSON object/);
  await expectError(await post("/v1/chat/completions", JSON.stringify({ messages: [] })), 400, /'messages'/);
  await expectError(await post("/v1/chat/completions", JSON.stringify({ messages: wire(MESSAGES), temperature: "hot" })), 400, /'temperature'/);
  await expectError(await post("/v1/chat/completions", JSON.stringify({ messages: wire(MESSAGES), n: 3 })), 400, /'n' must be 1/);
  await expectError(await post("/v1/completions", JSON.stringify({ prompt: [1, 99999] })), 400, /token ids/);
  await expectError(await post("/v1/completions", JSON.stringify({ prompt: "x ".repeat(400) })), 400, /more than a slot's context/);
  await expectError(await post("/v1/chat/completions", JSON.stringify({ messages: wire(MESSAGES) }), "wrong"), 401, /invalid API key/);
  await expectError(await fetch(`${url}/v1/chat/completions`, { headers: { Authorization: `Bearer ${KEY}` } }), 405, /use POST/);
  await expectError(await post("/v1/nothing", "{}"), 404, /no endpoint/);
  await expectError(await post("/v1/completions", JSON.stringify({ prompt: "x".repeat(17 * 1024 * 1024) })), 413, /larger than 16777216 bytes/);
  await expectError(await post("/slots/7?action=erase", "{}"), 404, /no slot 7/);
  await assert.rejects(client.chat.completions.create({ model: "m", messages: [{ role: "user" } as never] }), (e: Error) => e instanceof OpenAI.BadRequestError);
  // a client that goes away in the middle of a stream stops its generation and frees its slot
  const predicted = async () => (await server.metrics.predictedTokens.get()).values[0]?.value ?? 0;
  const before = await predicted();
  const controller = new AbortController();
  const stream = await client.chat.completions.create({ model: "m", messages: wire(MESSAGES), max_tokens: 200, stream: true }, { signal: controller.signal });
  try {
    let n = 0;
    for await (const _ of stream) if (++n === 3) controller.abort();
  } catch {
    // the client reports the abort (or ends the iteration)
  }
  for (let i = 0; i < 400 && server.pool!.busyCount > 0; i++) await new Promise((r) => setTimeout(r, 5));
  assert.equal(server.pool!.busyCount, 0);
  const generated = (await predicted()) - before;
  assert.ok(generated < 200, `generation stopped early (${generated} of 200 tokens)`);
  const ok = await client.chat.completions.create({ model: "m", messages: wire(MESSAGES), max_tokens: 2 });
  assert.equal(ok.choices[0]!.finish_reason, "length");
  assert.equal((await fetch(`${url}/health`)).status, 200);
});
