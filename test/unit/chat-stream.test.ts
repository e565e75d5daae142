/**
 * Streaming generation, Session.truncate and multi-turn conversations on a small synthetic model, against the
 * synchronous generate() loop and fresh sessions as references: the same greedy tokens; stop strings end the text
 * just before them (across token boundaries); an abort ends the stream between tokens; a conversation's second turn
 * evaluates only what the cache does not hold and answers what a fresh session answers on the whole prompt.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { loadModel, type Model } from "../../src/model/model.js";
import { generate } from "../../src/model/generate.js";
import { generateStream, type StreamPiece } from "../../src/model/stream.js";
import { Sampler } from "../../src/model/sampler.js";
import { TruncateError } from "../../src/model/session.js";
import { Conversation } from "../../src/chat/conversation.js";
import { commonPrefixLength } from "../../src/model/session.js";
import { chatPromptTokens, chatTemplateOf } from "../../src/chat/model-template.js";
import { useModelDir } from "../helpers/model-dir.js";

const md = useModelDir("chat", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 256 }, 21);
const greedy = () => new Sampler({ temperature: 0 });
const CTX = 256;

async function collect(stream: AsyncIterable<StreamPiece>): Promise<StreamPiece[]> {
  const pieces: StreamPiece[] = [];
  for await (const p of stream) pieces.push(p);
  return pieces;
}

function withModel(fn: (model: Model) => Promise<void>): () => Promise<void> {
  return async () => {
    const model = loadModel(md.modelPath, { threads: 1 });
    try {
      await fn(model);
    } finally {
      model.dispose();
    }
  };
}

test("generateStream gives generate()'s greedy tokens and their text, piece by piece", withModel(async (model) => {
  const prompt = model.tokenizer.encode("Once upon a time", { addSpecial: true });
  const reference = generate(model.createSession({ contextSize: CTX }), prompt, { maxTokens: 24, sampler: greedy(), isEog: (id) => model.tokenizer.isEog(id) });
  const stream = generateStream(model.createSession({ contextSize: CTX }), model.tokenizer, prompt, { maxTokens: 24, sampler: greedy() });
  const pieces = await collect(stream);
  const r = stream.result!;
  assert.deepEqual(r.tokens, reference.tokens);
  assert.equal(r.stopReason, reference.stopReason);
  assert.equal(r.genEvals, reference.genEvals);
  assert.equal(pieces.map((p) => p.text).join(""), model.tokenizer.decode(reference.tokens));
  assert.equal(r.text, model.tokenizer.decode(reference.tokens));
}));

test("a stop string ends the text just before it, even when it spans tokens; a held-back prefix is released", withModel(async (model) => {
  const prompt = model.tokenizer.encode("Once upon a time", { addSpecial: true });
  const full = generate(model.createSession({ contextSize: CTX }), prompt, { maxTokens: 40, sampler: greedy() });
  const fullText = model.tokenizer.decode(full.tokens);
  // a stop string made of the last character of one token's text and the first of the next one's
  const streamed = await collect(generateStream(model.createSession({ contextSize: CTX }), model.tokenizer, prompt, { maxTokens: 40, sampler: greedy() }));
  assert.equal(streamed.map((p) => p.text).join(""), fullText);
  let at = -1;
  let offset = 0;
  for (let i = 0; i + 1 < streamed.length && at < 0; i++) {
    offset += streamed[i]!.text.length;
    if (streamed[i]!.text.length > 0 && streamed[i + 1]!.text.length > 0 && i > 2) at = offset - 1;
  }
  assert.ok(at > 0, "the greedy text has two neighbouring non-empty pieces");
  const stop = fullText.slice(at, at + 2);
  const expected = fullText.slice(0, fullText.indexOf(stop));
  const stream = generateStream(model.createSession({ contextSize: CTX }), model.tokenizer, prompt, { maxTokens: 40, sampler: greedy(), stop: [stop] });
  const got = await collect(stream);
  assert.equal(stream.result!.stopReason, "stop");
  assert.equal(stream.result!.text, expected);
  assert.equal(got.map((p) => p.text).join(""), expected);
  // a stop string that never appears: everything comes out, though its prefix was held back at times
  const never = fullText.slice(0, 1) + "\u0001never";
  const s2 = generateStream(model.createSession({ contextSize: CTX }), model.tokenizer, prompt, { maxTokens: 40, sampler: greedy(), stop: [never] });
  assert.equal((await collect(s2)).map((p) => p.text).join(""), fullText);
  assert.equal(s2.result!.stopReason, "max_tokens");
}));

test("an AbortSignal ends the stream between tokens without an error", withModel(async (model) => {
  const prompt = model.tokenizer.encode("Once upon a time", { addSpecial: true });
  const controller = new AbortController();
  const session = model.createSession({ contextSize: CTX });
  const stream = generateStream(session, model.tokenizer, prompt, { maxTokens: 100, sampler: greedy(), signal: controller.signal });
  let n = 0;
  for await (const _ of stream) if (++n === 3) controller.abort();
  assert.equal(stream.result!.stopReason, "aborted");
  assert.equal(stream.result!.tokens.length, 3);
  assert.equal(session.position, prompt.length + stream.result!.genEvals);
  assert.throws(() => generateStream(model.createSession({ contextSize: 4 }), model.tokenizer, [1, 2, 3, 4, 5], { maxTokens: 1, sampler: greedy() }), /context holds 4 more/);
}));

test("Session.truncate keeps a prefix: continuing from it gives a fresh session's logits; an exact window refuses", withModel(async (model) => {
  const tokens = model.tokenizer.encode("Once upon a time there was a little girl named Lily.", { addSpecial: true });
  const s = model.createSession({ contextSize: CTX, kv: { k: "q8_0", v: "q4_0" } });
  s.eval(tokens);
  s.truncate(5);
  assert.equal(s.position, 5);
  const continued = s.eval([7, 8, 9]);
  const fresh = model.createSession({ contextSize: CTX, kv: { k: "q8_0", v: "q4_0" } }).eval([...tokens.slice(0, 5), 7, 8, 9]);
  assert.deepEqual(continued, fresh);
  assert.throws(() => s.truncate(9), RangeError);
  const windowed = model.createSession({ contextSize: CTX, kv: { k: "q8_0", v: "q4_0" }, kvWindow: 32 });
  windowed.eval(tokens);
  assert.equal(windowed.canTruncate, false);
  assert.throws(() => windowed.truncate(3), TruncateError);
  windowed.truncate(0);
  assert.equal(windowed.position, 0);
}));

test("commonPrefixLength", () => {
  assert.equal(commonPrefixLength([1, 2, 3], [1, 2, 4, 5]), 2);
  assert.equal(commonPrefixLength([], [1]), 0);
  assert.equal(commonPrefixLength([1, 2], [1, 2]), 2);
});

test("a conversation evaluates only new tokens, and answers as a fresh session does on the whole prompt", withModel(async (model) => {
  const { template } = chatTemplateOf(model.gguf, model.tokenizer); // the synthetic model has none: ChatML
  const session = model.createSession({ contextSize: CTX, kv: { k: "q8_0", v: "q4_0" } });
  const chat = new Conversation(session, model.tokenizer, template, "Be brief.");
  const first = chat.send("Tell me a story.", { sampler: greedy(), maxTokens: 12 });
  await collect(first);
  const firstCached = session.position;
  const second = chat.send("And then?", { sampler: greedy(), maxTokens: 12 });
  const answer = (await collect(second)).map((p) => p.text).join("");
  const r = second.result!;
  assert.equal(r.reevaluated, false);
  assert.ok(r.cachedTokens > 0 && r.cachedTokens <= firstCached, `${r.cachedTokens} of ${firstCached} cached tokens kept`);
  assert.equal(chat.messages.length, 5);
  assert.deepEqual(chat.messages.map((m) => m.role), ["system", "user", "assistant", "user", "assistant"]);
  assert.equal(chat.messages[4]!.content, answer);
  // the reference: a fresh session on the whole rendered conversation
  const prompt = chatPromptTokens(model.tokenizer, template.render(chat.messages.slice(0, 4)));
  const fresh = generate(model.createSession({ contextSize: CTX, kv: { k: "q8_0", v: "q4_0" } }), prompt, { maxTokens: 12, sampler: greedy(), isEog: (id) => model.tokenizer.isEog(id) });
  assert.deepEqual(r.tokens, fresh.tokens);
}));

test("with a context shift, generation goes past the context: generate, generateStream, and not for an exact window", withModel(async (model) => {
  const prompt = model.tokenizer.encode("Once upon a time", { addSpecial: true });
  const small = () => model.createSession({ contextSize: 48, kv: { k: "q8_0", v: "q4_0" } });
  const plain = generate(small(), prompt, { maxTokens: 120, sampler: greedy() });
  assert.equal(plain.stopReason, "context_full");
  const session = small();
  const shifted = generate(session, prompt, { maxTokens: 120, sampler: greedy(), contextShiftKeep: 1 });
  assert.equal(shifted.stopReason, "max_tokens");
  assert.equal(shifted.tokens.length, 120);
  assert.ok(session.position <= 48);
  assert.equal(session.tokens[0], prompt[0], "the kept prefix (BOS) stays first");
  const s2 = small();
  const stream = generateStream(s2, model.tokenizer, prompt, { maxTokens: 120, sampler: greedy(), contextShiftKeep: 1 });
  await collect(stream);
  assert.equal(stream.result!.stopReason, "max_tokens");
  assert.deepEqual(stream.result!.tokens, shifted.tokens, "the same tokens as generate()");
  assert.ok(stream.result!.shifts! >= 2);
  const windowed = model.createSession({ contextSize: 48, kv: { k: "q8_0", v: "q4_0" }, kvWindow: 32 });
  const w = generate(windowed, prompt, { maxTokens: 120, sampler: greedy(), contextShiftKeep: 1 });
  assert.equal(w.stopReason, "context_full");
}));
