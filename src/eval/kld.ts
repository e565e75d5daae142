/**
 * KL divergence of a test model's next-token distributions from a base's, and perplexity, with the summary statistics
 * llama-perplexity reports (tools/perplexity/perplexity.cpp, --kl-divergence): mean with its standard error, median,
 * 99th percentile (linear interpolation at fraction * (n - 1)), maximum, same-top-token fraction; perplexity
 * exp(mean NLL) with standard error ppl * sqrt((E[nll^2] - E[nll]^2) / (n - 1)).
 *
 * Differences from llama-perplexity, on purpose: base log-probabilities are exact float64 (it stores them as uint16
 * steps over the top 16 nats and skips tokens below -16 nats), so tiny divergences are not drowned in its rounding.
 */
import { argmaxRow, logSoftmaxRow, type Row } from "./logprobs.js";
import { scoredRange } from "./chunks.js";

/** One position compared. */
export interface RowComparison {
  /** KL(base || test) in nats, float64. */
  kld: number;
  /** The base's and the test's most likely tokens are the same. */
  sameTop: boolean;
  /** -log p_base(target) and -log p_test(target), when a target token was given (else NaN). */
  nllBase: number;
  nllTest: number;
}

/** Scratch for row comparisons: two float64 rows of nVocab values. */
export class RowScratch {
  readonly base: Float64Array; // (nVocab)
  readonly test: Float64Array; // (nVocab)
  constructor(readonly nVocab: number) {
    this.base = new Float64Array(nVocab);
    this.test = new Float64Array(nVocab);
  }
}

/**
 * Compare row `row` of two logits arrays (each (nRows, nVocab); raw logits or log-probabilities, either works):
 * KL(base || test) = sum_i p_base(i) (log p_base(i) - log p_test(i)), summed in float64 over tokens with p_base > 0.
 */
export function compareRow(
  baseLogits: Row,
  testLogits: Row,
  row: number,
  nVocab: number,
  target: number | null,
  scratch: RowScratch = new RowScratch(nVocab),
): RowComparison {
  if (scratch.nVocab !== nVocab) throw new RangeError(`scratch is for nVocab ${scratch.nVocab}, rows have ${nVocab}`);
  if (target !== null && !(Number.isInteger(target) && target >= 0 && target < nVocab)) {
    throw new RangeError(`target token ${target} is outside the vocabulary 0..${nVocab - 1}`);
  }
  const lb = scratch.base;
  const lt = scratch.test;
  logSoftmaxRow(baseLogits, row, nVocab, lb);
  logSoftmaxRow(testLogits, row, nVocab, lt);
  let kld = 0;
  for (let i = 0; i < nVocab; i++) {
    if (lb[i] === -Infinity) continue; // p_base = 0 contributes 0
    kld += Math.exp(lb[i]) * (lb[i] - lt[i]);
  }
  return {
    kld,
    sameTop: argmaxRow(baseLogits, row, nVocab) === argmaxRow(testLogits, row, nVocab),
    nllBase: target === null ? NaN : -lb[target],
    nllTest: target === null ? NaN : -lt[target],
  };
}

/** Mean and its standard error, as llama-perplexity's mean_and_uncertainty (error 0 for 10 values or fewer). */
export function meanAndStderr(sum: number, sum2: number, count: number): { mean: number; stderr: number } {
  if (count < 1) return { mean: 0, stderr: 0 };
  const mean = sum / count;
  const variance = sum2 / count - mean * mean;
  return { mean, stderr: variance > 0 && count > 10 ? Math.sqrt(variance / (count - 1)) : 0 };
}

/** Median of ascending-sorted values (mean of the two middle ones for an even count). */
export function medianOfSorted(sorted: ArrayLike<number>): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError("median of no values");
  return n % 2 === 0 ? 0.5 * (sorted[n / 2] + sorted[n / 2 - 1]) : sorted[(n - 1) / 2];
}

/** Percentile of ascending-sorted values: linear interpolation at fraction * (n - 1), as llama-perplexity's. */
export function percentileOfSorted(sorted: ArrayLike<number>, fraction: number): number {
  const n = sorted.length;
  if (n === 0) throw new RangeError("percentile of no values");
  if (fraction <= 0) return sorted[0];
  if (fraction >= 1) return sorted[n - 1];
  const p = fraction * (n - 1);
  const ip = Math.floor(p);
  const w = p - ip;
  return (1 - w) * sorted[ip] + w * sorted[Math.min(ip + 1, n - 1)];
}

export interface PerplexitySummary {
  ppl: number;
  pplStderr: number;
  /** Tokens scored. */
  nTokens: number;
}

/** The running sums of a PerplexityAccumulator (what a checkpoint saves). */
export interface PerplexitySums {
  sumNll: number;
  sumNll2: number;
  count: number;
}

/** Perplexity from negative log-likelihoods, accumulated as llama-perplexity does (float64 sums of nll and nll^2). */
export class PerplexityAccumulator {
  private sumNll = 0;
  private sumNll2 = 0;
  private count = 0;

  get sums(): PerplexitySums {
    return { sumNll: this.sumNll, sumNll2: this.sumNll2, count: this.count };
  }

  /** Continue from saved sums (a checkpoint's). */
  restore(s: PerplexitySums): void {
    this.sumNll = s.sumNll;
    this.sumNll2 = s.sumNll2;
    this.count = s.count;
  }

  addNll(nll: number): void {
    this.sumNll += nll;
    this.sumNll2 += nll * nll;
    this.count++;
  }

  /** Score one logits row (of (nRows, nVocab)) against the token that follows. */
  addRow(logits: Row, row: number, nVocab: number, target: number, scratch: Float64Array = new Float64Array(nVocab)): void {
    logSoftmaxRow(logits, row, nVocab, scratch);
    this.addNll(-scratch[target]);
  }

  /** Score a chunk's second half: logits (ctx, nVocab) of `chunkTokens` (ctx tokens, BOS already in place). */
  addChunk(logits: Row, chunkTokens: readonly number[], nVocab: number): void {
    const { first, count } = scoredRange(chunkTokens.length);
    checkChunkLogits(logits, chunkTokens.length, nVocab);
    const scratch = new Float64Array(nVocab); // (nVocab)
    for (let r = first; r < first + count; r++) this.addRow(logits, r, nVocab, chunkTokens[r + 1], scratch);
  }

  summary(): PerplexitySummary {
    if (this.count < 2) throw new RangeError(`perplexity needs at least 2 scored tokens, has ${this.count}`);
    const mean = this.sumNll / this.count;
    const variance = this.sumNll2 / this.count - mean * mean;
    const ppl = Math.exp(mean);
    return { ppl, pplStderr: variance > 0 ? ppl * Math.sqrt(variance / (this.count - 1)) : 0, nTokens: this.count };
  }
}

export interface KldSummary {
  /** Positions compared. */
  count: number;
  kldMean: number;
  kldMeanStderr: number;
  kldMedian: number;
  kldP99: number;
  kldMax: number;
  /** Fraction (0..1) of positions where base and test agree on the most likely token. */
  sameTopFraction: number;
  ppl: number;
  pplStderr: number;
  pplBase: number;
  pplBaseStderr: number;
  /** 100 * (ppl / pplBase - 1). */
  deltaPplPct: number;
}

/**
 * KL divergence, same-top and perplexity statistics of a test against a base, fed one position at a time
 * (KldAccumulator compares rows into one; perplexity.ts's KldTally adds the correlated ppl-ratio error).
 */
export class KldStats {
  private readonly klds: number[] = [];
  private sumKld = 0;
  private sumKld2 = 0;
  private nSameTop = 0;
  private readonly test = new PerplexityAccumulator();
  private readonly base = new PerplexityAccumulator();

  add(kld: number, sameTop: boolean, nllBase: number, nllTest: number): void {
    this.klds.push(kld);
    this.sumKld += kld;
    this.sumKld2 += kld * kld;
    if (sameTop) this.nSameTop++;
    this.test.addNll(nllTest);
    this.base.addNll(nllBase);
  }

  get count(): number {
    return this.klds.length;
  }

  summary(): KldSummary {
    const count = this.klds.length;
    if (count < 2) throw new RangeError(`KL-divergence statistics need at least 2 positions, have ${count}`);
    const sorted = Float64Array.from(this.klds).sort();
    const { mean, stderr } = meanAndStderr(this.sumKld, this.sumKld2, count);
    const t = this.test.summary();
    const b = this.base.summary();
    return {
      count,
      kldMean: mean,
      kldMeanStderr: stderr,
      kldMedian: medianOfSorted(sorted),
      kldP99: percentileOfSorted(sorted, 0.99),
      kldMax: sorted[count - 1],
      sameTopFraction: this.nSameTop / count,
      ppl: t.ppl,
      pplStderr: t.pplStderr,
      pplBase: b.ppl,
      pplBaseStderr: b.pplStderr,
      deltaPplPct: 100 * (t.ppl / b.ppl - 1),
    };
  }
}

/** KL divergence and perplexities of a test against a base over many positions. */
export class KldAccumulator {
  private readonly stats = new KldStats();
  private readonly scratch: RowScratch;

  constructor(readonly nVocab: number) {
    this.scratch = new RowScratch(nVocab);
  }

  /** Compare one row; `target` is the token that follows (for perplexity). */
  addRow(baseLogits: Row, testLogits: Row, row: number, target: number): RowComparison {
    const c = compareRow(baseLogits, testLogits, row, this.nVocab, target, this.scratch);
    this.stats.add(c.kld, c.sameTop, c.nllBase, c.nllTest);
    return c;
  }

  /** Compare the scored second half of a chunk: both logits arrays (ctx, nVocab) for `chunkTokens` (ctx tokens). */
  addChunk(baseLogits: Row, testLogits: Row, chunkTokens: readonly number[]): void {
    const { first, count } = scoredRange(chunkTokens.length);
    checkChunkLogits(baseLogits, chunkTokens.length, this.nVocab);
    checkChunkLogits(testLogits, chunkTokens.length, this.nVocab);
    for (let r = first; r < first + count; r++) this.addRow(baseLogits, testLogits, r, chunkTokens[r + 1]);
  }

  summary(): KldSummary {
    return this.stats.summary();
  }
}

function checkChunkLogits(logits: Row, ctx: number, nVocab: number): void {
  if (logits.length !== ctx * nVocab) {
    throw new RangeError(`chunk logits hold ${logits.length} values, expected ctx ${ctx} x nVocab ${nVocab} = ${ctx * nVocab}`);
  }
}
