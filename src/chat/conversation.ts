/**
 * A multi-turn conversation over one session: each user message is rendered with the model's chat template
 * together with the whole history, and only the tokens after what the cache already holds are evaluated. When the
 * template renders the history differently from the tokens the cache holds (a trimmed answer, a system message
 * moved to the last turn), the cache goes back to the longest common prefix (Session.truncate), or, where a layer
 * keeps an exact window and cannot go back, evaluates the conversation again (`reevaluated` in the result).
 */
import type { Session } from "../model/session.js";
import type { Tokenizer } from "../tokenizer/index.js";
import type { TokenSampler } from "../model/generate.js";
import { generateStream, type StreamPiece, type StreamResult } from "../model/stream.js";
import type { ChatMessage, ChatTemplate, RenderOptions } from "./template.js";
import { chatPromptTokens } from "./model-template.js";

export interface ReplyOptions {
  sampler: TokenSampler;
  /** Tokens of the answer at most (default: until end of generation or a full context). */
  maxTokens?: number;
  stop?: readonly string[];
  signal?: AbortSignal;
  /** Extra template variables. */
  variables?: RenderOptions["variables"];
  /** Shift the context when it fills, keeping this many first tokens (StreamOptions.contextShiftKeep). */
  contextShiftKeep?: number;
}

export interface ReplyResult extends StreamResult {
  /** Tokens of the rendered conversation that were already in the cache (not evaluated again). */
  cachedTokens: number;
  /** True when the cache could not go back to the common prefix and the conversation was evaluated from the start. */
  reevaluated: boolean;
}

export class Conversation {
  /** The messages so far (the system message first, if any); answers are added as they finish. */
  readonly messages: ChatMessage[] = [];

  constructor(
    readonly session: Session,
    private readonly tokenizer: Tokenizer,
    private readonly template: ChatTemplate,
    system?: string,
  ) {
    if (system !== undefined && system !== "") this.messages.push({ role: "system", content: system });
    if (session.position !== 0) throw new RangeError("Conversation: the session must start empty");
  }

  /** Tokens the session's cache holds. */
  get position(): number {
    return this.session.position;
  }

  /**
   * Send a user message; iterate the returned stream for the answer's text. The answer joins `messages` when the
   * stream ends (also when it is aborted: the part that was written).
   */
  send(content: string, opts: ReplyOptions): AsyncIterable<StreamPiece> & { readonly result: ReplyResult | undefined } {
    const messages = [...this.messages, { role: "user", content }];
    const prompt = this.template.render(messages, { addGenerationPrompt: true, variables: opts.variables });
    const tokens = chatPromptTokens(this.tokenizer, prompt);
    const { kept: keep, restarted: reevaluated } = this.session.keepPrefix(tokens);
    const stream = generateStream(this.session, this.tokenizer, tokens.slice(keep), {
      maxTokens: opts.maxTokens ?? Infinity,
      sampler: opts.sampler,
      stop: opts.stop,
      signal: opts.signal,
      cachedTokens: tokens.slice(0, keep),
      contextShiftKeep: opts.contextShiftKeep,
    });
    let result: ReplyResult | undefined;
    const conversation = this;
    async function* run(): AsyncGenerator<StreamPiece> {
      try {
        yield* stream;
      } finally {
        const r = stream.result;
        if (r) {
          conversation.messages.push({ role: "user", content }, { role: "assistant", content: r.text });
          result = { ...r, cachedTokens: keep, reevaluated };
        }
      }
    }
    const iterator = run();
    return {
      [Symbol.asyncIterator]: () => iterator,
      get result() {
        return result;
      },
    };
  }
}
