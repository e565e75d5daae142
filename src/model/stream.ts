/**
 * Streaming generation: the generate() loop as an async generator of text, with stop strings and an AbortSignal.
 * Each step evaluates one token (synchronously: the kernels run on workers while the main thread waits) and then
 * yields to the event loop, so a signal's abort, a socket's close or a terminal's Ctrl-C are seen between tokens.
 *
 *   const stream = generateStream(session, tokenizer, promptTokens, { maxTokens: 64, sampler, stop: ["\n\n"] });
 *   for await (const piece of stream) process.stdout.write(piece.text);
 *   const result = stream.result; // set once the loop has ended
 *
 * Text is released as soon as it cannot be the start of a stop string: a piece that might begin one is held back
 * until the next tokens decide. A stop string that appears ends generation; neither it nor anything after it is
 * returned. Stop strings are matched in the decoded text, across token boundaries.
 */
import type { Tokenizer } from "../tokenizer/index.js";
import { TokenTextDecoder } from "../tokenizer/index.js";
import { ContextOverflowError, type GenerationSession, type StopReason, type TokenSampler } from "./generate.js";

export interface StreamOptions {
  /** Generated tokens at most (Infinity: until end of generation, a stop string or a full context). */
  maxTokens: number;
  sampler: TokenSampler;
  /** Strings that end generation when they appear in the text (not returned). */
  stop?: readonly string[];
  /** Abort between tokens; the stream then ends with stopReason "aborted" (no error is thrown). */
  signal?: AbortSignal;
  /** Tokens the cache already holds before the prompt (a conversation's history): what the penalties also look at. */
  cachedTokens?: readonly number[];
  /** Report each token's log-probability and this many top alternatives (the model's softmax, before sampling). */
  logprobs?: number;
  /** Prompt tokens evaluated per step (default 512): other streams and abort checks run between steps. */
  promptChunk?: number;
}

/** A token and its natural-log probability under the model (softmax of the raw logits). */
export interface TokenLogprob {
  token: number;
  logprob: number;
}

export type StreamStopReason = StopReason | "stop" | "aborted";

export interface StreamPiece {
  /** Text released by this step (may be "" when a possible stop string is being held back). */
  text: string;
  /** The token sampled in this step (-1 for the last piece: text the UTF-8 decoder held until the end). */
  token: number;
  /** With StreamOptions.logprobs: the token's log-probability and the top alternatives, most likely first. */
  logprob?: TokenLogprob;
  topLogprobs?: TokenLogprob[];
}

export interface StreamResult {
  /** Generated ids, without a final end-of-generation token. */
  tokens: number[];
  /** The generated text up to (not including) a stop string. */
  text: string;
  stopReason: StreamStopReason;
  promptTokens: number;
  /** Prompt tokens now in the cache: all of them, unless the stream was aborted while the prompt was evaluated. */
  promptEvaluated: number;
  promptMs: number;
  /** Single-token evaluations after the prompt: the generated tokens that are now in the cache. */
  genEvals: number;
  genMs: number;
}

export interface GenerationStream extends AsyncIterable<StreamPiece> {
  /** The outcome, once iteration has ended (undefined before). */
  readonly result: StreamResult | undefined;
}

/** Length of the longest suffix of `text` that is a proper prefix of one of `stops`. */
function heldBackLength(text: string, stops: readonly string[]): number {
  let best = 0;
  for (const s of stops) {
    for (let n = Math.min(s.length - 1, text.length); n > best; n--) {
      if (text.endsWith(s.slice(0, n))) {
        best = n;
        break;
      }
    }
  }
  return best;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** log softmax(logits)[id] for `id` and the `top` most likely tokens (f64 sums). */
function logprobsOf(logits: Float32Array, id: number, top: number): { logprob: TokenLogprob; topLogprobs: TokenLogprob[] } {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i]! > max) max = logits[i]!;
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i]! - max);
  const logZ = max + Math.log(sum);
  const best: number[] = []; // ids, most likely first (lowest id on ties)
  if (top > 0) {
    for (let i = 0; i < logits.length; i++) {
      if (best.length === top && logits[i]! <= logits[best[top - 1]!]!) continue;
      let at = best.length;
      while (at > 0 && logits[best[at - 1]!]! < logits[i]!) at--;
      best.splice(at, 0, i);
      if (best.length > top) best.pop();
    }
  }
  return { logprob: { token: id, logprob: logits[id]! - logZ }, topLogprobs: best.map((t) => ({ token: t, logprob: logits[t]! - logZ })) };
}

export function generateStream(session: GenerationSession, tokenizer: Tokenizer, promptTokens: readonly number[], opts: StreamOptions): GenerationStream {
  const stops = (opts.stop ?? []).filter((s) => s !== "");
  if (promptTokens.length === 0) throw new RangeError("generateStream: the prompt has no tokens (nothing to condition on)");
  if (!(opts.maxTokens >= 0)) throw new RangeError(`generateStream: maxTokens = ${opts.maxTokens}; allowed: >= 0 or Infinity`);
  if (session.position + promptTokens.length > session.contextSize) {
    throw new ContextOverflowError(promptTokens.length, session.position, session.contextSize);
  }
  let result: StreamResult | undefined;

  async function* run(): AsyncGenerator<StreamPiece> {
    const decoder = new TokenTextDecoder(tokenizer);
    const tokens: number[] = [];
    const context = [...(opts.cachedTokens ?? []), ...promptTokens]; // for the sampler's penalties
    let text = ""; // everything decoded so far
    let released = 0; // text.slice(0, released) has been yielded
    let stopReason: StreamStopReason = "max_tokens";
    let genEvals = 0;

    // the prompt in steps, yielding to the event loop between them
    const promptStart = performance.now();
    const chunk = opts.promptChunk ?? 512;
    let logits: Float32Array = new Float32Array(0); // (nVocab) after the last evaluated token
    let promptEvaluated = 0;
    for (let start = 0; start < promptTokens.length; start += chunk) {
      if (start > 0) await nextTurn();
      if (opts.signal?.aborted) break;
      const part = promptTokens.slice(start, start + chunk);
      logits = session.eval(part);
      promptEvaluated += part.length;
    }
    const promptMs = performance.now() - promptStart;
    const genStart = performance.now();
    try {
      while (true) {
        if (opts.signal?.aborted) {
          stopReason = "aborted";
          break;
        }
        if (tokens.length >= opts.maxTokens) break;
        const id = opts.sampler.sample(logits, context);
        if (tokenizer.isEog(id)) {
          stopReason = "eog";
          break;
        }
        const probs = opts.logprobs !== undefined ? logprobsOf(logits, id, opts.logprobs) : undefined;
        tokens.push(id);
        context.push(id);
        text += decoder.push(id);
        const hit = stops.map((s) => text.indexOf(s, Math.max(0, released - s.length))).filter((i) => i >= 0);
        if (hit.length > 0) {
          const end = Math.min(...hit);
          text = text.slice(0, end);
          yield { text: text.slice(released), token: id, ...probs };
          released = text.length;
          stopReason = "stop";
          break;
        }
        const end = text.length - heldBackLength(text, stops);
        yield { text: text.slice(released, Math.max(released, end)), token: id, ...probs };
        released = Math.max(released, end);
        if (tokens.length >= opts.maxTokens) break;
        if (session.position >= session.contextSize) {
          stopReason = "context_full";
          break;
        }
        await nextTurn();
        if (opts.signal?.aborted) {
          stopReason = "aborted";
          break;
        }
        logits = session.eval([id]);
        genEvals++;
      }
      if (stopReason !== "stop") {
        text += decoder.flush();
        if (text.length > released) yield { text: text.slice(released), token: -1 };
      }
    } finally {
      result = { tokens, text, stopReason, promptTokens: promptTokens.length, promptEvaluated, promptMs, genEvals, genMs: performance.now() - genStart };
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
