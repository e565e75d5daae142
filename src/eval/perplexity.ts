/**
 * Perplexity of a model over a text with one K/V cache configuration, by llama-perplexity's method (chunks.ts):
 * the text tokenized once, cut into ctx-token chunks each starting with BOS, the second half of each chunk scored.
 *
 * A run can also record the base distributions of every scored position (a BaselineRecorder, kld-file.ts) or compare
 * every scored position against recorded ones (a Baseline): KL divergence, same top token, and both perplexities.
 */
import { createHash } from "node:crypto";
import type { PerplexityCheckpoint } from "./perplexity-checkpoint.js";
import type { KvPair } from "../api.js";
import type { ExactFormatName } from "../formats/types.js";
import type { Model } from "../model/model.js";
import { chunksThatFit, scoredRange, splitIntoChunks } from "./chunks.js";
import { KldStats, meanAndStderr, PerplexityAccumulator, type KldSummary, type PerplexitySummary } from "./kld.js";
import { logSoftmaxRow } from "./logprobs.js";

/** Input the user gave that cannot be evaluated: a text shorter than one chunk, a context longer than the model's. */
export class EvalInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EvalInputError";
  }
}

/** The text as evaluated: its chunks and what identifies it. */
export interface EvalText {
  /** sha256 (hex) of the text's UTF-8 bytes. */
  textSha256: string;
  /** Tokens of the whole text (BOS included when the model adds it). */
  nTextTokens: number;
  ctx: number;
  /** nChunks chunks of ctx token ids each, the first token BOS when the model adds BOS. */
  chunks: number[][];
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex");
}

/**
 * Tokenize `text` and cut it into chunks of `ctx` tokens (at most `maxChunks`).
 * Throws EvalInputError when ctx exceeds the model's trained context or the text holds less than one chunk.
 */
export function prepareEvalText(model: Model, text: string, ctx: number, maxChunks?: number): EvalText {
  checkContext(model, ctx);
  const tokenizer = model.tokenizer;
  const tokens = tokenizer.encode(text, { addSpecial: true });
  const fit = chunksThatFit(tokens.length, ctx);
  if (fit === 0) {
    throw new EvalInputError(
      `the text has ${tokens.length} tokens, fewer than one chunk of -c ${ctx}; give a longer text or a smaller -c (at least 2)`,
    );
  }
  if (maxChunks !== undefined && (!Number.isInteger(maxChunks) || maxChunks < 1)) {
    throw new EvalInputError(`--chunks ${maxChunks}: expected a positive integer`);
  }
  const chunks = splitIntoChunks(tokens, ctx, { bosToken: tokenizer.addBos ? tokenizer.bosId : null, maxChunks });
  return { textSha256: sha256Hex(text), nTextTokens: tokens.length, ctx, chunks };
}

/** A context the model can evaluate: 2 .. its trained context length. */
export function checkContext(model: Model, ctx: number): void {
  const trained = model.config.contextLength;
  if (!Number.isInteger(ctx) || ctx < 2) throw new EvalInputError(`-c ${ctx}: the chunk size must be an integer of at least 2`);
  if (ctx > trained) {
    throw new EvalInputError(`-c ${ctx} is larger than the model's trained context of ${trained} tokens; use -c ${trained} or less`);
  }
}

/** KL divergence, same-top and perplexity statistics of a test run against a base, fed one position at a time. */
export class KldTally {
  private readonly stats = new KldStats();
  /** Sums of d = nllTest − nllBase, for the uncertainty of ppl / pplBase (their errors are strongly correlated). */
  private sumDiff = 0;
  private sumDiff2 = 0;

  add(kld: number, sameTop: boolean, nllBase: number, nllTest: number): void {
    this.stats.add(kld, sameTop, nllBase, nllTest);
    const d = nllTest - nllBase;
    this.sumDiff += d;
    this.sumDiff2 += d * d;
  }

  get count(): number {
    return this.stats.count;
  }

  summary(): KldRunSummary {
    const summary = this.stats.summary();
    const diff = meanAndStderr(this.sumDiff, this.sumDiff2, summary.count);
    // ppl / pplBase = exp(mean d) exactly; its error from the error of mean d.
    const ratio = Math.exp(diff.mean);
    return { ...summary, deltaPplPct: 100 * (ratio - 1), deltaPplPctStderr: 100 * ratio * diff.stderr };
  }
}

export interface KldRunSummary extends KldSummary {
  /** 100 × (ppl / pplBase − 1), computed as 100 × (exp(mean(nllTest − nllBase)) − 1). */
  deltaPplPct: number;
  /** Standard error of deltaPplPct from the per-position differences (correlation of the two runs included). */
  deltaPplPctStderr: number;
}

/** Recorded base distributions a run can be compared against, position by position (kld-file.ts implements it). */
export interface Baseline {
  readonly nVocab: number;
  readonly ctx: number;
  readonly nChunks: number;
  /**
   * Compare the test's row `row` of `testLogits` (rows of nVocab) with the base at (chunk, scored position index)
   * and add the result to `tally`. `target` is the token that follows.
   */
  comparePosition(chunk: number, index: number, testLogits: Float32Array, row: number, target: number, tally: KldTally): void;
}

/** Something that records the base distributions while a run goes (kld-file.ts's BaselineDistributions). */
export interface BaselineSink {
  /** Called with consecutive batches of a chunk's logits: rows firstRow .. of `tokens` (the chunk), (n, nVocab). */
  addRows(chunk: number, tokens: readonly number[], firstRow: number, logits: Float32Array): void;
}

export interface PerplexityRunOptions {
  /** One pair for every layer, or one per layer (a schedule). */
  kv: KvPair | readonly KvPair[];
  /** Hadamard rotation of quantized K/V (default true). */
  rotation?: boolean;
  /** Exact recent window and sinks (SessionOptions.kvWindow, kvSinks; default 0) and their rows' format (kvExactFormat). */
  kvWindow?: number;
  kvSinks?: number;
  kvExactFormat?: ExactFormatName;
  /** Compare each scored position against this base. */
  baseline?: Baseline;
  /** Record this run's distributions. */
  record?: BaselineSink;
  /** Called after each chunk (done = chunks finished so far). */
  onChunk?: (done: number, total: number) => void;
  /** Called after each batch of tokens (done = tokens evaluated so far, of total = chunks × ctx). */
  onTokens?: (done: number, total: number) => void;
  /** Write checkpoints as the run goes and resume from an earlier one (not with a baseline or a record). */
  checkpoint?: PerplexityCheckpoint;
}

export interface PerplexityRunResult extends PerplexitySummary {
  kv: KvPair | readonly KvPair[];
  rotation: boolean;
  /** Bytes the KV cache of one ctx-token session takes. */
  kvBytes: number;
  nChunks: number;
  /** Present when a baseline was given. */
  kld?: KldRunSummary;
  /** Wall time of the evaluation, ms. */
  ms: number;
}

/** Evaluate every chunk from an empty cache and score its second half. */
export function runPerplexity(model: Model, evalText: EvalText, opts: PerplexityRunOptions): PerplexityRunResult {
  const { ctx, chunks } = evalText;
  const nVocab = model.config.nVocab;
  const { baseline, record } = opts;
  if (baseline) checkBaselineFits(baseline, nVocab, ctx, chunks.length);
  const { first, count } = scoredRange(ctx);
  const ppl = new PerplexityAccumulator();
  const tally = new KldTally();
  const scratch = new Float64Array(nVocab); // (nVocab)
  const started = performance.now();
  const session = model.createSession({ contextSize: ctx, kv: opts.kv, rotation: opts.rotation ?? true, kvWindow: opts.kvWindow, kvSinks: opts.kvSinks, kvExactFormat: opts.kvExactFormat });
  try {
    const totalTokens = chunks.length * ctx;
    const { checkpoint } = opts;
    if (checkpoint && (baseline || record)) throw new EvalInputError("checkpoints do not cover KL-divergence runs: run without --checkpoint");
    // a resumed run starts in the middle of chunk `startChunk`, its first `resumed` tokens already in the cache
    const at = checkpoint?.resume(session);
    if (at) ppl.restore(at.sums);
    const startChunk = at?.chunk ?? 0;
    for (let c = startChunk; c < chunks.length; c++) {
      const chunk = chunks[c];
      const resumed = c === startChunk ? (at?.tokensDone ?? 0) : 0;
      if (resumed === 0) session.reset();
      // logits batch by batch, (n, nVocab) for chunk rows firstRow ..: only the scored second half is read
      session.evalRows(chunk.slice(resumed), (batchRow, logits) => {
        const firstRow = resumed + batchRow;
        const n = logits.length / nVocab;
        for (let r = Math.max(firstRow, first); r < Math.min(firstRow + n, first + count); r++) {
          const target = chunk[r + 1];
          logSoftmaxRow(logits, r - firstRow, nVocab, scratch);
          ppl.addNll(-scratch[target]);
          baseline?.comparePosition(c, r - first, logits, r - firstRow, target, tally);
        }
        record?.addRows(c, chunk, firstRow, logits);
        opts.onTokens?.(c * ctx + firstRow + n, totalTokens);
        if (firstRow + n < ctx) checkpoint?.maybeWrite(session, { chunk: c, tokensDone: firstRow + n, sums: ppl.sums });
      });
      opts.onChunk?.(c + 1, chunks.length);
      if (c + 1 < chunks.length) checkpoint?.maybeWrite(session, { chunk: c + 1, tokensDone: 0, sums: ppl.sums });
    }
    checkpoint?.remove();
    return {
      ...ppl.summary(),
      kv: opts.kv,
      rotation: session.rotation,
      kvBytes: session.kvBytes,
      nChunks: chunks.length,
      kld: baseline ? tally.summary() : undefined,
      ms: performance.now() - started,
    };
  } finally {
    session.dispose();
  }
}

function checkBaselineFits(baseline: Baseline, nVocab: number, ctx: number, nChunks: number): void {
  if (baseline.nVocab !== nVocab) {
    throw new EvalInputError(`the baseline has a vocabulary of ${baseline.nVocab} tokens, the model ${nVocab}: they are different models`);
  }
  if (baseline.ctx !== ctx) throw new EvalInputError(`the baseline was computed with -c ${baseline.ctx}, this run uses -c ${ctx}`);
  if (baseline.nChunks < nChunks) {
    throw new EvalInputError(`the baseline holds ${baseline.nChunks} chunks, this run evaluates ${nChunks}; use --chunks ${baseline.nChunks} or fewer`);
  }
}
