/**
 * OpenAI wire shapes: request bodies checked field by field into typed jobs (a wrong field gives RequestError with
 * its name, sent as HTTP 400 {error: {message, type, param, code}}), and the response / stream-chunk objects of
 * /v1/chat/completions and /v1/completions, with llama-server's `timings`.
 */
import type { ChatMessage } from "../chat/template.js";
import type { SamplingOptions } from "../api.js";

/** A request the server refuses: HTTP status and an OpenAI error object. */
export class RequestError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly type = status === 401 ? "authentication_error" : status >= 500 ? "server_error" : "invalid_request_error",
  ) {
    super(message);
    this.name = "RequestError";
  }

  toJSON(): object {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.status } };
  }
}

/** What one request asks to generate, whatever its endpoint. */
export interface GenerationJob {
  kind: "chat" | "completion";
  /** chat: the messages; completion: the prompt text or token ids. */
  messages?: ChatMessage[];
  prompt?: string | number[];
  stream: boolean;
  /** Usage in the last stream chunk (stream_options.include_usage). */
  streamUsage: boolean;
  maxTokens: number;
  stop: string[];
  sampling: SamplingOptions;
  /** Top log-probabilities per generated token (0: only the token's own), or undefined: none. */
  logprobs: number | undefined;
  /** The request's `model` field, echoed back (any string is accepted, as llama-server does). */
  model: string | undefined;
}

type Body = Record<string, unknown>;

function asBody(value: unknown): Body {
  if (value === null || typeof value !== "object" || Array.isArray(value)) throw new RequestError(400, "the request body must be a JSON object");
  return value as Body;
}

function optionalNumber(body: Body, key: string, min: number, max: number, integer = false): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max) {
    const kind = integer ? "an integer" : "a number";
    throw new RequestError(400, `'${key}' must be ${kind} from ${min} to ${max}, got ${JSON.stringify(v)}`, key);
  }
  return v;
}

function optionalBool(body: Body, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") throw new RequestError(400, `'${key}' must be true or false, got ${JSON.stringify(v)}`, key);
  return v;
}

function stopStrings(body: Body): string[] {
  const v = body.stop;
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return [v];
  if (Array.isArray(v) && v.length <= 16 && v.every((s) => typeof s === "string")) return v as string[];
  throw new RequestError(400, "'stop' must be a string or an array of at most 16 strings", "stop");
}

function samplingOf(body: Body): SamplingOptions {
  const seed = optionalNumber(body, "seed", -(2 ** 53), 2 ** 53, true);
  return {
    temperature: optionalNumber(body, "temperature", 0, 2),
    topP: optionalNumber(body, "top_p", 0, 1),
    topK: optionalNumber(body, "top_k", 0, 1_000_000, true),
    minP: optionalNumber(body, "min_p", 0, 1),
    // OpenAI's seed is any integer; ours is 32-bit
    seed: seed === undefined ? undefined : ((seed % 2 ** 32) + 2 ** 32) % 2 ** 32,
    presencePenalty: optionalNumber(body, "presence_penalty", -2, 2),
    frequencyPenalty: optionalNumber(body, "frequency_penalty", -2, 2),
    repeatPenalty: optionalNumber(body, "repeat_penalty", 0.01, 10),
    penaltyLastN: optionalNumber(body, "repeat_last_n", -1, 1_000_000, true),
  };
}

function commonFields(body: Body, maxTokensKeys: readonly string[]): Omit<GenerationJob, "kind" | "messages" | "prompt" | "logprobs"> {
  if (body.n !== undefined && body.n !== null && body.n !== 1) throw new RequestError(400, "'n' must be 1: one choice per request", "n");
  if (body.model !== undefined && body.model !== null && typeof body.model !== "string") throw new RequestError(400, "'model' must be a string", "model");
  let maxTokens: number | undefined;
  for (const key of maxTokensKeys) maxTokens ??= optionalNumber(body, key, -1, 10_000_000, true);
  const streamOptions = body.stream_options;
  if (streamOptions !== undefined && streamOptions !== null && (typeof streamOptions !== "object" || Array.isArray(streamOptions))) {
    throw new RequestError(400, "'stream_options' must be an object", "stream_options");
  }
  return {
    stream: optionalBool(body, "stream") ?? false,
    streamUsage: (streamOptions as Body | undefined)?.include_usage === true,
    maxTokens: maxTokens === undefined || maxTokens < 0 ? Infinity : maxTokens,
    stop: stopStrings(body),
    sampling: samplingOf(body),
    model: body.model as string | undefined,
  };
}

/** The text of a message's content: a string, or an array of {type: "text", text} parts. */
function contentText(content: unknown, i: number): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part: unknown, j) => {
        const p = part as Body | null;
        if (p === null || typeof p !== "object" || p.type !== "text" || typeof p.text !== "string") {
          throw new RequestError(400, `messages[${i}].content[${j}]: only {"type": "text", "text": ...} parts are supported`, "messages");
        }
        return p.text;
      })
      .join("");
  }
  if (content === null || content === undefined) return "";
  throw new RequestError(400, `messages[${i}].content must be a string or an array of text parts`, "messages");
}

export function parseChatRequest(raw: unknown): GenerationJob {
  const body = asBody(raw);
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) throw new RequestError(400, "'messages' must be a non-empty array of {role, content}", "messages");
  const parsed = messages.map((m: unknown, i): ChatMessage => {
    const msg = m as Body | null;
    if (msg === null || typeof msg !== "object" || typeof msg.role !== "string" || msg.role === "") {
      throw new RequestError(400, `messages[${i}] must be an object with a string 'role'`, "messages");
    }
    if ((msg.content === undefined || msg.content === null) && msg.role !== "assistant") {
      throw new RequestError(400, `messages[${i}] (${msg.role}) has no 'content'`, "messages");
    }
    return { role: msg.role, content: contentText(msg.content, i) };
  });
  const logprobs = optionalBool(body, "logprobs") ?? false;
  const top = optionalNumber(body, "top_logprobs", 0, 20, true);
  if (top !== undefined && !logprobs) throw new RequestError(400, "'top_logprobs' needs 'logprobs': true", "top_logprobs");
  return { kind: "chat", messages: parsed, ...commonFields(body, ["max_completion_tokens", "max_tokens"]), logprobs: logprobs ? (top ?? 0) : undefined };
}

export function parseCompletionRequest(raw: unknown): GenerationJob {
  const body = asBody(raw);
  let prompt = body.prompt;
  if (Array.isArray(prompt) && prompt.length === 1 && typeof prompt[0] === "string") prompt = prompt[0];
  const isTokens = Array.isArray(prompt) && prompt.length > 0 && prompt.every((t) => Number.isInteger(t) && (t as number) >= 0);
  if (!(typeof prompt === "string" && prompt !== "") && !isTokens) {
    throw new RequestError(400, "'prompt' must be a non-empty string or an array of token ids (one prompt per request)", "prompt");
  }
  const logprobs = optionalNumber(body, "logprobs", 0, 20, true);
  return { kind: "completion", prompt: prompt as string | number[], ...commonFields(body, ["max_tokens"]), logprobs };
}

/** llama-server's timings object. */
export interface Timings {
  prompt_n: number;
  prompt_ms: number;
  prompt_per_token_ms: number;
  prompt_per_second: number;
  predicted_n: number;
  predicted_ms: number;
  predicted_per_token_ms: number;
  predicted_per_second: number;
  /** Prompt tokens taken from the slot's cache instead of evaluated. */
  cache_n: number;
}

export function timingsOf(promptN: number, promptMs: number, predictedN: number, predictedMs: number, cacheN: number): Timings {
  const per = (n: number, ms: number) => ({ perToken: n > 0 ? ms / n : 0, perSecond: ms > 0 ? (n * 1000) / ms : 0 });
  const p = per(promptN, promptMs);
  const g = per(predictedN, predictedMs);
  return {
    prompt_n: promptN, prompt_ms: promptMs, prompt_per_token_ms: p.perToken, prompt_per_second: p.perSecond,
    predicted_n: predictedN, predicted_ms: predictedMs, predicted_per_token_ms: g.perToken, predicted_per_second: g.perSecond,
    cache_n: cacheN,
  };
}

/** OpenAI's finish_reason for how generation ended. */
export function finishReason(stopReason: string): "stop" | "length" {
  return stopReason === "max_tokens" || stopReason === "context_full" ? "length" : "stop";
}
