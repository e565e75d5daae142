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
import { ContextOverflowError, shiftWhenFull, type GenerationSession, type StopReason, type TokenSampler } from "./generate.js";
import { nextTurn } from "../runtime/next-turn.js";

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
  /**
   * Shift the context when it fills instead of stopping: keep this many first tokens, drop half of the rest
   * (Session.shift; layouts that cannot shift stop with "context_full" as without this option).
   */
  contextShiftKeep?: number;
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
  /** Context shifts made while generating. */
  shifts?: number;
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

/**
 * The per-token rules of generation, fed the logits after each evaluated token: sample (penalties over the context so
 * far), stop at an end-of-generation token, at maxTokens, at a stop string or when the cache is full, decode text and
 * hold back what could start a stop string, report log-probabilities. generateStream drives one with a session; the
 * server drives one per slot in batched steps.
 */
export class Generation {
  readonly tokens: number[] = [];
  /** The decoded text (up to a stop string once one is found). */
  text = "";
  /** Set when generation has ended. */
  stopReason: StreamStopReason | undefined;
  private released = 0; // text.slice(0, released) has been handed out
  private readonly decoder: TokenTextDecoder;
  private readonly stops: string[];
  private readonly context: number[];

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly opts: Pick<StreamOptions, "maxTokens" | "sampler" | "stop" | "logprobs">,
    /** Tokens in the cache before generation (cached history and prompt), for the penalties. */
    context: readonly number[],
  ) {
    if (!(opts.maxTokens >= 0)) throw new RangeError(`maxTokens = ${opts.maxTokens}; allowed: >= 0 or Infinity`);
    this.decoder = new TokenTextDecoder(tokenizer);
    this.stops = (opts.stop ?? []).filter((x) => x !== "");
    this.context = [...context];
    if (opts.maxTokens === 0) this.stopReason = "max_tokens";
  }

  /**
   * Take the logits after the last evaluated token (`cacheFull`: no room for another one). Returns the piece of text
   * this step releases (undefined when none), and `next`: the token to evaluate before the next step, or undefined
   * when generation has ended (stopReason says why).
   */
  step(logits: Float32Array, cacheFull: boolean): { piece: StreamPiece | undefined; next: number | undefined } {
    if (this.stopReason !== undefined) return { piece: undefined, next: undefined };
    const id = this.opts.sampler.sample(logits, this.context);
    if (this.tokenizer.isEog(id)) return this.end("eog", undefined);
    const probs = this.opts.logprobs !== undefined ? logprobsOf(logits, id, this.opts.logprobs) : undefined;
    this.tokens.push(id);
    this.context.push(id);
    this.text += this.decoder.push(id);
    const hit = this.stops.map((x) => this.text.indexOf(x, Math.max(0, this.released - x.length))).filter((i) => i >= 0);
    if (hit.length > 0) {
      this.text = this.text.slice(0, Math.min(...hit));
      const piece = { text: this.text.slice(this.released), token: id, ...probs };
      this.released = this.text.length;
      this.stopReason = "stop";
      return { piece, next: undefined };
    }
    const end = Math.max(this.released, this.text.length - heldBackLength(this.text, this.stops));
    const piece = { text: this.text.slice(this.released, end), token: id, ...probs };
    this.released = end;
    if (this.tokens.length >= this.opts.maxTokens) return this.end("max_tokens", piece);
    if (cacheFull) return this.end("context_full", piece);
    return { piece, next: id };
  }

  /** End now (an abort); the text held back is released by flush(). */
  stop(reason: StreamStopReason): void {
    this.stopReason ??= reason;
  }

  /** After the end: the text the UTF-8 decoder or the stop-string check still held (none after a stop string). */
  flush(): StreamPiece | undefined {
    if (this.stopReason === "stop") return undefined;
    this.text += this.decoder.flush();
    if (this.text.length <= this.released) return undefined;
    const piece = { text: this.text.slice(this.released), token: -1 };
    this.released = this.text.length;
    return piece;
  }

  private end(reason: StreamStopReason, piece: StreamPiece | undefined): { piece: StreamPiece | undefined; next: undefined } {
    this.stopReason = reason;
    return { piece, next: undefined };
  }
}

export function generateStream(session: GenerationSession, tokenizer: Tokenizer, promptTokens: readonly number[], opts: StreamOptions): GenerationStream {
  if (promptTokens.length === 0) throw new RangeError("generateStream: the prompt has no tokens (nothing to condition on)");
  if (!(opts.maxTokens >= 0)) throw new RangeError(`generateStream: maxTokens = ${opts.maxTokens}; allowed: >= 0 or Infinity`);
  if (session.position + promptTokens.length > session.contextSize) {
    throw new ContextOverflowError(promptTokens.length, session.position, session.contextSize);
  }
  let result: StreamResult | undefined;

  async function* run(): AsyncGenerator<StreamPiece> {
    const gen = new Generation(tokenizer, opts, [...(opts.cachedTokens ?? []), ...promptTokens]);
    let genEvals = 0;
    let shifts = 0;
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
      while (gen.stopReason === undefined) {
        if (opts.signal?.aborted) {
          gen.stop("aborted");
          break;
        }
        if (shiftWhenFull(session, opts.contextShiftKeep)) shifts++;
        const { piece, next } = gen.step(logits, session.position >= session.contextSize);
        if (piece) yield piece;
        if (next === undefined) break;
        await nextTurn();
        if (opts.signal?.aborted) {
          gen.stop("aborted");
          break;
        }
        logits = session.eval([next]);
        genEvals++;
      }
      const last = gen.flush();
      if (last) yield last;
    } finally {
      result = {
        tokens: gen.tokens, text: gen.text, stopReason: gen.stopReason ?? "aborted", promptTokens: promptTokens.length, promptEvaluated, promptMs, genEvals,
        genMs: performance.now() - genStart, shifts,
      };
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
