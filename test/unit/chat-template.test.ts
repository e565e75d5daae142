/**
 * Chat templates: four real templates (test/fixtures/chat-templates, as the models ship them) rendered for
 * multi-turn conversations and compared with the exact prompts those model families document; raise_exception and
 * bad templates give ChatTemplateError; a model's own template, a user's, or the ChatML fallback; and the
 * tokenization of a rendered prompt (special tokens parsed, one BOS).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { CHATML_TEMPLATE, ChatTemplate, ChatTemplateError, type ChatMessage } from "../../src/chat/template.js";
import { chatPromptTokens, chatTemplateOf } from "../../src/chat/model-template.js";
import { SpmTokenizer, TokenType, Vocab, type VocabSpec } from "../../src/tokenizer/index.js";
import type { GgufFile, GgufValue } from "../../src/gguf/types.js";
import { REPO_ROOT } from "../helpers/shared.js";

const fixture = (name: string): string => readFileSync(path.join(REPO_ROOT, "test", "fixtures", "chat-templates", name), "utf8");

const SYSTEM: ChatMessage = { role: "system", content: "You are terse." };
const TURNS: ChatMessage[] = [
  { role: "user", content: "Hi" },
  { role: "assistant", content: "Hello! " },
  { role: "user", content: "How are you?" },
];

test("Llama 3.3: system block with its dates, header per turn, <|eot_id|>, the assistant header to generate", () => {
  const t = new ChatTemplate(fixture("llama-3.3.jinja"), "<|begin_of_text|>", "<|eot_id|>", "llama-3.3.jinja");
  const header = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
  const expected =
    "<|begin_of_text|>" +
    header("system") + "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are terse.<|eot_id|>" +
    header("user") + "Hi<|eot_id|>" +
    header("assistant") + "Hello!<|eot_id|>" + // content | trim
    header("user") + "How are you?<|eot_id|>" +
    header("assistant");
  assert.equal(t.render([SYSTEM, ...TURNS]), expected);
  // without the generation prompt the text ends after the last turn; a caller's date_string replaces the default
  assert.equal(t.render([SYSTEM, ...TURNS], { addGenerationPrompt: false }), expected.slice(0, -header("assistant").length));
  const dated = t.render([{ role: "user", content: "Hi" }], { variables: { date_string: "04 Dec 2026" } });
  assert.equal(dated, "<|begin_of_text|>" + header("system") + "Cutting Knowledge Date: December 2023\nToday Date: 04 Dec 2026\n\n<|eot_id|>" + header("user") + "Hi<|eot_id|>" + header("assistant"));
});

test("Qwen2.5: ChatML turns, its default system message when there is none", () => {
  const t = new ChatTemplate(fixture("qwen2.5.jinja"), "", "<|im_end|>", "qwen2.5.jinja");
  const turn = (role: string, content: string) => `<|im_start|>${role}\n${content}<|im_end|>\n`;
  assert.equal(
    t.render([SYSTEM, ...TURNS]),
    turn("system", "You are terse.") + turn("user", "Hi") + turn("assistant", "Hello! ") + turn("user", "How are you?") + "<|im_start|>assistant\n",
  );
  assert.equal(
    t.render(TURNS),
    turn("system", "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.") + turn("user", "Hi") + turn("assistant", "Hello! ") +
      turn("user", "How are you?") + "<|im_start|>assistant\n",
  );
});

test("Mistral v0.3: [INST] turns, answers closed by </s>, the system message folded into the last user turn", () => {
  const t = new ChatTemplate(fixture("mistral-v0.3.jinja"), "<s>", "</s>", "mistral-v0.3.jinja");
  assert.equal(t.render([SYSTEM, ...TURNS]), "<s>[INST] Hi[/INST] Hello!</s>[INST] You are terse.\n\nHow are you?[/INST]");
  assert.equal(t.render(TURNS), "<s>[INST] Hi[/INST] Hello!</s>[INST] How are you?[/INST]");
  assert.throws(() => t.render([{ role: "narrator", content: "x" }]), (e: Error) => e instanceof ChatTemplateError && /Only user and assistant roles/.test(e.message));
});

test("Gemma 2: <start_of_turn> with the model role; a system message or non-alternating roles raise", () => {
  const t = new ChatTemplate(fixture("gemma-2.jinja"), "<bos>", "<eos>", "gemma-2.jinja");
  assert.equal(
    t.render(TURNS),
    "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n<start_of_turn>user\nHow are you?<end_of_turn>\n<start_of_turn>model\n",
  );
  assert.throws(() => t.render([SYSTEM, ...TURNS]), (e: Error) => e instanceof ChatTemplateError && /gemma-2\.jinja/.test(e.message) && /System role not supported/.test(e.message));
  assert.throws(() => t.render([TURNS[0]!, TURNS[0]!]), (e: Error) => e instanceof ChatTemplateError && /must alternate/.test(e.message));
});

test("bad templates and bad messages give ChatTemplateError naming the problem", () => {
  assert.throws(() => new ChatTemplate("{% for m in messages %}", "", "", "broken.jinja"), (e: Error) => e instanceof ChatTemplateError && /broken\.jinja/.test(e.message) && /does not parse/.test(e.message));
  const t = new ChatTemplate(CHATML_TEMPLATE, "", "", "chatml");
  assert.throws(() => t.render([]), /non-empty array/);
  assert.throws(() => t.render([{ role: "user" } as unknown as ChatMessage]), /messages\[0\]\.content/);
  assert.throws(() => t.render([{ role: 3, content: "x" } as unknown as ChatMessage]), /messages\[0\]\.role/);
});

/** An SPM vocabulary with <unk>, <s>, </s>, byte tokens, the ChatML control tokens and a few pieces. */
function chatVocab(addBos: boolean): SpmTokenizer {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.BYTE);
  }
  for (const text of ["▁", "H", "i", "▁Hi", "user", "assistant"]) {
    tokens.push(text);
    types.push(TokenType.NORMAL);
  }
  for (const text of ["<|im_start|>", "<|im_end|>"]) {
    tokens.push(text);
    types.push(TokenType.CONTROL);
  }
  const spec: VocabSpec = { model: "llama", tokens, scores: new Float32Array(tokens.length), tokenTypes: Int32Array.from(types), addBos };
  return new SpmTokenizer(new Vocab(spec));
}

/** A GGUF header with just these metadata values (strings stored as type 8, numbers as uint32). */
const fileWith = (entries: [string, GgufValue][]): GgufFile =>
  ({
    name: "m.gguf",
    metadata: new Map(entries),
    metadataEntries: new Map(entries.map(([k, v]) => [k, { type: typeof v === "string" ? 8 : 4, offset: 0 }])),
  }) as unknown as GgufFile;

test("chatTemplateOf: the model's template with BOS/EOS from the vocabulary, a user's file, or ChatML", () => {
  const tok = chatVocab(true);
  const own = chatTemplateOf(fileWith([["tokenizer.chat_template", "{{ bos_token }}[{{ messages[0].content }}]{{ eos_token }}"]]), tok);
  assert.equal(own.source, "model");
  assert.equal(own.template.render([{ role: "user", content: "x" }]), "<s>[x]</s>");
  const mine = chatTemplateOf(fileWith([["tokenizer.chat_template", "ignored"]]), tok, { text: "<{{ messages[0].role }}>", origin: "my.jinja" });
  assert.equal(mine.source, "file");
  assert.equal(mine.template.render([{ role: "user", content: "x" }]), "<user>");
  const none = chatTemplateOf(fileWith([]), tok);
  assert.equal(none.source, "chatml");
  assert.equal(none.template.render([{ role: "user", content: "Hi" }]), "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n");
  assert.throws(() => chatTemplateOf(fileWith([["tokenizer.chat_template", 7]]), tok), /tokenizer\.chat_template/);
});

test("chatPromptTokens: control-token texts become their ids, and a BOS the template wrote is not doubled", () => {
  const id = (tok: SpmTokenizer, text: string) => tok.encode(text, { addSpecial: false, parseSpecial: true });
  const withBos = chatVocab(true);
  const prompt = "<s><|im_start|>user\nHi<|im_end|>\n";
  const tokens = chatPromptTokens(withBos, prompt);
  assert.equal(tokens.filter((t) => t === withBos.bosId).length, 1);
  assert.equal(tokens[0], withBos.bosId);
  assert.deepEqual(tokens, [withBos.bosId, ...id(withBos, prompt.slice("<s>".length))]);
  const imStart = id(withBos, "<|im_start|>");
  assert.equal(imStart.length, 1, "<|im_start|> is one control token");
  assert.equal(tokens[1], imStart[0]);
  // a tokenizer that adds no BOS keeps the template's text as it is
  const noBos = chatVocab(false);
  assert.deepEqual(chatPromptTokens(noBos, prompt), id(noBos, prompt));
});
