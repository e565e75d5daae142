/**
 * Chat templates: a model's `tokenizer.chat_template` (Jinja, as Hugging Face tokenizers ship it) rendered with
 * @huggingface/jinja, the renderer transformers.js and node-llama-cpp use. Pure: no model, no tokenizer; the caller
 * supplies the BOS / EOS strings (chatTemplateOf reads them from a GGUF file's vocabulary).
 *
 * What a template sees: `messages` (role, content), `add_generation_prompt`, `bos_token`, `eos_token`, and
 * `raise_exception(message)` (the library's own, which throws; it is reported as a ChatTemplateError naming the
 * template). Rendering follows Python Jinja's rules as the library implements them, so the strings equal
 * transformers' apply_chat_template(tokenize=False).
 */
import { Template } from "@huggingface/jinja";

export interface ChatMessage {
  /** "system", "user", "assistant" (templates may accept others, such as "tool"). */
  role: string;
  content: string;
}

export interface RenderOptions {
  /** End with the header that opens the assistant's turn (transformers' add_generation_prompt). Default true. */
  addGenerationPrompt?: boolean;
  /** More template variables (for example `date_string` for Llama 3.x templates). */
  variables?: Record<string, unknown>;
}

/** A template that does not parse, or refused a conversation (its raise_exception), or messages of the wrong shape. */
export class ChatTemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ChatTemplateError";
  }
}

export class ChatTemplate {
  private readonly template: Template;

  /**
   * @param source the Jinja text
   * @param origin where it came from, for error messages ("tokenizer.chat_template of model.gguf", a file path)
   */
  constructor(
    readonly source: string,
    readonly bosToken: string,
    readonly eosToken: string,
    readonly origin: string,
  ) {
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new ChatTemplateError(`the chat template (${origin}) does not parse: ${(e as Error).message}`);
    }
  }

  /** The prompt text for `messages` (special tokens as text: tokenize it with special-token parsing on). */
  render(messages: readonly ChatMessage[], opts: RenderOptions = {}): string {
    checkMessages(messages);
    try {
      return this.template.render({
        ...opts.variables,
        messages: messages.map((m) => ({ role: m.role, content: m.content })),
        add_generation_prompt: opts.addGenerationPrompt ?? true,
        bos_token: this.bosToken,
        eos_token: this.eosToken,
      });
    } catch (e) {
      throw new ChatTemplateError(`the chat template (${this.origin}) refused the conversation: ${(e as Error).message}`);
    }
  }
}

function checkMessages(messages: readonly ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new ChatTemplateError("messages: expected a non-empty array of {role, content}");
  messages.forEach((m, i) => {
    if (m === null || typeof m !== "object") throw new ChatTemplateError(`messages[${i}]: expected an object {role, content}`);
    if (typeof m.role !== "string" || m.role === "") throw new ChatTemplateError(`messages[${i}].role: expected a non-empty string`);
    if (typeof m.content !== "string") throw new ChatTemplateError(`messages[${i}].content: expected a string`);
  });
}

/**
 * The template kvsplit uses for a model without `tokenizer.chat_template`, as llama.cpp does: ChatML
 * (`<|im_start|>role\ncontent<|im_end|>\n`, then `<|im_start|>assistant\n`). Models that were not trained on it may
 * answer poorly; pass a template of your own (--chat-template-file) for those.
 */
export const CHATML_TEMPLATE =
  "{%- for message in messages -%}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' -}}{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";
