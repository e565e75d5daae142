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
}

export type StreamStopReason = StopReason | "stop" | "aborted";

export interface StreamPiece {
  /** Text released by this step (may be "" when a possible stop string is being held back). */
  text: string;
  /** The token sampled in this step (-1 for the last piece: text the UTF-8 decoder held until the end). */
  token: number;
}

export interface StreamResult {
  /** Generated ids, without a final end-of-generation token. */
  tokens: number[];
  /** The generated text up to (not including) a stop string. */
  text: string;
  stopReason: StreamStopReason;
  promptTokens: number;
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

    const promptStart = performance.now();
    let logits = session.eval([...promptTokens]);
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
        tokens.push(id);
        context.push(id);
        text += decoder.push(id);
        const hit = stops.map((s) => text.indexOf(s, Math.max(0, released - s.length))).filter((i) => i >= 0);
        if (hit.length > 0) {
          const end = Math.min(...hit);
          text = text.slice(0, end);
          yield { text: text.slice(released), token: id };
          released = text.length;
          stopReason = "stop";
          break;
        }
        const end = text.length - heldBackLength(text, stops);
        yield { text: text.slice(released, Math.max(released, end)), token: id };
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
      result = { tokens, text, stopReason, promptTokens: promptTokens.length, promptMs, genEvals, genMs: performance.now() - genStart };
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
