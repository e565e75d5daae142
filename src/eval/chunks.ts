/**
 * Splitting a token stream into perplexity chunks the way llama-perplexity does (tools/perplexity/perplexity.cpp):
 * - the text is tokenized once, with BOS when the model adds one;
 * - it is cut into floor(nTokens / ctx) consecutive, non-overlapping chunks of exactly `ctx` tokens (the tail is dropped);
 * - when the model adds BOS, each chunk's first token is replaced by BOS before it is evaluated;
 * - only the second half is scored: the logits at positions first .. ctx-2 (first = floor(ctx/2)) predict the tokens
 *   at first+1 .. ctx-1, so each chunk scores ctx - 1 - first tokens (255 for ctx 512).
 */

export interface ChunkOptions {
  /** The BOS token id when the model adds BOS (each chunk then starts with it), or null when it does not. */
  bosToken: number | null;
  /** Use at most this many chunks (default: all that fit). */
  maxChunks?: number;
}

/** The logits rows of a chunk that are scored, and how many. */
export interface ScoredRange {
  /** First scored logits row (position); it predicts the token at first + 1. */
  first: number;
  /** Number of scored rows: rows first .. first + count - 1, predicting tokens first + 1 .. ctx - 1. */
  count: number;
}

/** The scored rows of a chunk of `ctx` tokens: the second half, as llama-perplexity scores. */
export function scoredRange(ctx: number): ScoredRange {
  if (!Number.isInteger(ctx) || ctx < 2) throw new RangeError(`chunk size ${ctx} must be an integer of at least 2`);
  const first = Math.floor(ctx / 2);
  return { first, count: ctx - 1 - first };
}

/** How many whole chunks of `ctx` tokens a stream of `nTokens` tokens gives (llama-perplexity's n_chunk_max). */
export function chunksThatFit(nTokens: number, ctx: number): number {
  return Math.floor(nTokens / ctx);
}

/**
 * The chunks to evaluate: each an array of `ctx` token ids, its first token replaced by BOS when the model adds BOS.
 * Throws when not even one chunk fits.
 */
export function splitIntoChunks(tokens: readonly number[], ctx: number, options: ChunkOptions): number[][] {
  scoredRange(ctx); // validates ctx
  const fit = chunksThatFit(tokens.length, ctx);
  if (fit === 0) throw new RangeError(`the text has ${tokens.length} tokens, fewer than one chunk of ${ctx}`);
  const wanted = options.maxChunks ?? fit;
  if (!Number.isInteger(wanted) || wanted < 1) throw new RangeError(`maxChunks ${wanted} must be a positive integer`);
  const nChunks = Math.min(wanted, fit);
  const chunks: number[][] = [];
  for (let c = 0; c < nChunks; c++) {
    const chunk = tokens.slice(c * ctx, (c + 1) * ctx);
    if (options.bosToken !== null) chunk[0] = options.bosToken;
    chunks.push(chunk);
  }
  return chunks;
}
