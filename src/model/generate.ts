/**
 * The generation loop: evaluate the prompt, then sample → feed back one token at a time until
 * maxTokens, an end-of-generation token, or a full context. Uses only the Session API, so it works with any
 * K/V configuration the session was created with.
 */

/** The part of a Session the loop needs. */
export interface GenerationSession {
  /** Evaluate `tokens` at the next positions; returns the logits of the last one (nVocab). */
  eval(tokens: number[]): Float32Array;
  /** Tokens already in the cache. */
  readonly position: number;
  /** Tokens the cache holds at most. */
  readonly contextSize: number;
  /** Context shift (Session.shift): keep nKeep tokens, drop the next nDiscard. */
  shift?(nKeep: number, nDiscard: number): void;
  canShift?(nKeep: number): boolean;
}

/**
 * When the cache is full and generation goes on: shift the context as llama.cpp does (keep the first `keep` tokens,
 * drop half of the rest) if the session can; returns whether it did.
 */
export function shiftWhenFull(session: GenerationSession, keep: number | undefined): boolean {
  if (keep === undefined || session.position < session.contextSize || !session.shift || !session.canShift?.(keep)) return false;
  const discard = Math.floor((session.position - keep) / 2);
  if (discard < 1) return false;
  session.shift(keep, discard);
  return true;
}

export interface TokenSampler {
  /** The next token; `context`: the tokens so far (what repetition penalties look at). */
  sample(logits: Float32Array, context?: readonly number[]): number;
}

export interface GenerateOptions {
  /** Stop after this many generated tokens (Infinity: until end-of-generation or a full context). */
  maxTokens: number;
  sampler: TokenSampler;
  /** True for end-of-generation tokens (the tokenizer's isEog); such a token ends generation and is not returned. */
  isEog?: (id: number) => boolean;
  /** Called with each generated token as soon as it is sampled. */
  onToken?: (id: number) => void;
  /** Shift the context when it fills (keep this many first tokens, drop half of the rest) instead of stopping. */
  contextShiftKeep?: number;
}

export type StopReason = "max_tokens" | "eog" | "context_full";

export interface GenerateResult {
  /** The generated ids, without the prompt and without a final end-of-generation token. */
  tokens: number[];
  stopReason: StopReason;
  promptTokens: number;
  /** Wall time of the prompt evaluation, ms. */
  promptMs: number;
  /** Single-token evaluations after the prompt (one fewer than tokens sampled when stopping at maxTokens). */
  genEvals: number;
  /** Wall time of sampling and single-token evaluations after the prompt, ms. */
  genMs: number;
}

/** The prompt does not fit in what is left of the session's context. */
export class ContextOverflowError extends Error {
  constructor(readonly promptTokens: number, readonly position: number, readonly contextSize: number) {
    super(
      `the prompt has ${promptTokens} tokens but the context holds ${contextSize - position} more ` +
        `(context size ${contextSize}, ${position} already used); shorten the prompt or raise -c`,
    );
    this.name = "ContextOverflowError";
  }
}

export function generate(session: GenerationSession, promptTokens: number[], options: GenerateOptions): GenerateResult {
  const { maxTokens, sampler, isEog, onToken } = options;
  if (promptTokens.length === 0) throw new RangeError("generate: the prompt has no tokens (nothing to condition on)");
  if (!(maxTokens >= 0)) throw new RangeError(`generate: maxTokens = ${maxTokens}; allowed: >= 0 or Infinity`);
  if (session.position + promptTokens.length > session.contextSize) {
    throw new ContextOverflowError(promptTokens.length, session.position, session.contextSize);
  }

  const promptStart = performance.now();
  let logits = session.eval(promptTokens);
  const promptMs = performance.now() - promptStart;

  const tokens: number[] = [];
  const context = [...promptTokens]; // prompt and answer so far, for the sampler's penalties
  let stopReason: StopReason = "max_tokens";
  let genEvals = 0;
  const genStart = performance.now();
  while (tokens.length < maxTokens) {
    const id = sampler.sample(logits, context);
    if (isEog?.(id)) {
      stopReason = "eog";
      break;
    }
    tokens.push(id);
    context.push(id);
    onToken?.(id);
    if (tokens.length >= maxTokens) break;
    shiftWhenFull(session, options.contextShiftKeep);
    if (session.position >= session.contextSize) {
      stopReason = "context_full";
      break;
    }
    logits = session.eval([id]);
    genEvals++;
  }
  const genMs = performance.now() - genStart;
  return { tokens, stopReason, promptTokens: promptTokens.length, promptMs, genEvals, genMs };
}

/** Tokens per second, 0 when nothing was timed. */
export function tokensPerSecond(count: number, ms: number): number {
  return count > 0 && ms > 0 ? (count * 1000) / ms : 0;
}
