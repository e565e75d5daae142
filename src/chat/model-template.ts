/**
 * A model's chat template and its rendered prompts as tokens: the GGUF's `tokenizer.chat_template` (or a template
 * given by the user, or ChatML when the model has none, as llama.cpp does), with BOS / EOS strings from the
 * vocabulary, and the tokenization llama.cpp applies to a rendered prompt (special tokens parsed; a BOS or EOS the
 * template wrote as text is not doubled by the tokenizer's own).
 */
import type { GgufFile } from "../gguf/types.js";
import { metaOptionalString } from "../gguf/meta.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { CHATML_TEMPLATE, ChatTemplate } from "./template.js";

export interface ModelChatTemplate {
  template: ChatTemplate;
  /** Where the template came from: "model" (tokenizer.chat_template), "file" (the caller's) or "chatml" (fallback). */
  source: "model" | "file" | "chatml";
}

/** Text of a control token (its bytes as UTF-8), or "" when the vocabulary has no such token. */
function specialText(tokenizer: Tokenizer, id: number): string {
  if (id < 0) return "";
  return new TextDecoder().decode(tokenizer.tokenBytes(id, true));
}

/**
 * The chat template for a model: `override` (the text of --chat-template-file, named by `overrideOrigin`) if given,
 * else the GGUF's tokenizer.chat_template, else ChatML.
 */
export function chatTemplateOf(file: GgufFile, tokenizer: Tokenizer, override?: { text: string; origin: string }): ModelChatTemplate {
  const bos = specialText(tokenizer, tokenizer.bosId);
  const eos = specialText(tokenizer, tokenizer.eosId);
  if (override) return { template: new ChatTemplate(override.text, bos, eos, override.origin), source: "file" };
  const own = metaOptionalString(file, "tokenizer.chat_template");
  if (own !== undefined && own.trim() !== "") {
    return { template: new ChatTemplate(own, bos, eos, `tokenizer.chat_template of ${file.name}`), source: "model" };
  }
  return { template: new ChatTemplate(CHATML_TEMPLATE, bos, eos, "ChatML, the fallback for a model without a template"), source: "chatml" };
}

/**
 * Token ids of a rendered chat prompt: special-token texts become their ids; when the tokenizer adds BOS (EOS) itself,
 * a BOS (EOS) the template already wrote at the start (end) is dropped from the text first, so there is one.
 */
export function chatPromptTokens(tokenizer: Tokenizer, prompt: string): number[] {
  let text = prompt;
  const bos = specialText(tokenizer, tokenizer.bosId);
  const eos = specialText(tokenizer, tokenizer.eosId);
  if (tokenizer.addBos && bos !== "" && text.startsWith(bos)) text = text.slice(bos.length);
  if (tokenizer.addEos && eos !== "" && text.endsWith(eos)) text = text.slice(0, text.length - eos.length);
  return tokenizer.encode(text, { addSpecial: true, parseSpecial: true });
}
