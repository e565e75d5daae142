/** The evaluation core (src/eval/): chunking, log-softmax, KL divergence and perplexity, against hand-computed values. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { chunksThatFit, scoredRange, splitIntoChunks } from "../../src/eval/chunks.js";
import { argmaxRow, logSoftmaxRow, logSoftmaxRows } from "../../src/eval/logprobs.js";
import {
  compareRow,
  KldAccumulator,
  meanAndStderr,
  medianOfSorted,
  percentileOfSorted,
  PerplexityAccumulator,
} from "../../src/eval/kld.js";

const close = (actual: number, expected: number, tol: number, what: string): void =>
  assert.ok(Math.abs(actual - expected) <= tol, `${what}: ${actual} vs expected ${expected} (tol ${tol})`);

test("scoredRange: the second half of a chunk, as llama-perplexity scores", () => {
  assert.deepEqual(scoredRange(512), { first: 256, count: 255 });
  assert.deepEqual(scoredRange(7), { first: 3, count: 3 });
  assert.throws(() => scoredRange(1), /at least 2/);
});

test("splitIntoChunks: whole chunks only, first token replaced by BOS", () => {
  const tokens = Array.from({ length: 20 }, (_, i) => 10 + i); // 10..29
  assert.equal(chunksThatFit(20, 6), 3);
  const chunks = splitIntoChunks(tokens, 6, { bosToken: 1 });
  assert.deepEqual(chunks, [
    [1, 11, 12, 13, 14, 15],
    [1, 17, 18, 19, 20, 21],
    [1, 23, 24, 25, 26, 27],
  ]);
  assert.deepEqual(tokens[0], 10, "input not modified");
  assert.equal(splitIntoChunks(tokens, 6, { bosToken: 1, maxChunks: 2 }).length, 2);
  assert.equal(splitIntoChunks(tokens, 6, { bosToken: 1, maxChunks: 9 }).length, 3);
  assert.deepEqual(splitIntoChunks(tokens, 6, { bosToken: null })[1], [16, 17, 18, 19, 20, 21]);
  assert.throws(() => splitIntoChunks(tokens, 21, { bosToken: 1 }), /20 tokens, fewer than one chunk of 21/);
});

test("logSoftmaxRow: hand-computed, shift-invariant, -Infinity kept", () => {
  const out = new Float64Array(3);
  // probabilities 1/6, 2/6, 3/6
  const logZ = logSoftmaxRow(new Float32Array([Math.log(1), Math.log(2), Math.log(3)]), 0, 3, out);
  close(out[0], Math.log(1 / 6), 1e-7, "p0");
  close(out[1], Math.log(1 / 3), 1e-7, "p1");
  close(out[2], Math.log(1 / 2), 1e-7, "p2");
  close(logZ, Math.log(6), 1e-7, "log-partition");
  // second row of a (2, 3) array, shifted by 1000
  const shifted = new Float64Array([5, 5, 5, 1000 + Math.log(1), 1000 + Math.log(2), 1000 + Math.log(3)]);
  logSoftmaxRow(shifted, 1, 3, out);
  close(out[2], Math.log(1 / 2), 1e-12, "shifted p2");
  logSoftmaxRow(new Float64Array([-Infinity, 0, 0]), 0, 3, out);
  assert.equal(out[0], -Infinity);
  close(out[1], Math.log(0.5), 1e-15, "p1 with a zero");
  assert.throws(() => logSoftmaxRow(new Float32Array([0, NaN, 0]), 0, 3, out), /NaN at token 1/);
  assert.throws(() => logSoftmaxRow(new Float32Array(3), 1, 3, out), /past the end/);
  const rows = logSoftmaxRows(new Float32Array([0, 0, 0, Math.log(3)]), 2, 2); // (2, 2)
  close(rows[0], Math.log(0.5), 1e-7, "rows[0]");
  close(rows[3], Math.log(0.75), 1e-7, "rows[3]");
});

test("argmaxRow: first index on ties", () => {
  assert.equal(argmaxRow(new Float32Array([1, 3, 3, 2]), 0, 4), 1);
  assert.equal(argmaxRow(new Float32Array([1, 3, 7, 2]), 1, 2), 0);
});

test("compareRow: KL(base||test), same top token, target NLLs", () => {
  const base = new Float64Array([Math.log(0.5), Math.log(0.5)]);
  const test = new Float64Array([Math.log(0.25), Math.log(0.75)]);
  const c = compareRow(base, test, 0, 2, 1);
  close(c.kld, 0.5 * Math.log(4 / 3), 1e-12, "KL"); // 0.5 ln(0.5/0.25) + 0.5 ln(0.5/0.75)
  assert.equal(c.sameTop, false); // base ties -> token 0; test -> token 1
  close(c.nllBase, Math.log(2), 1e-12, "nll base");
  close(c.nllTest, -Math.log(0.75), 1e-12, "nll test");
  // raw logits work as well as log-probabilities; identical distributions give 0
  const same = compareRow(new Float32Array([1, 2, 3]), new Float32Array([11, 12, 13]), 0, 3, null);
  close(same.kld, 0, 1e-15, "KL of identical");
  assert.equal(same.sameTop, true);
  assert.ok(Number.isNaN(same.nllBase));
  // tokens the base gives probability 0 contribute nothing
  const zero = compareRow(new Float64Array([-Infinity, 0]), new Float64Array([0, 0]), 0, 2, null);
  close(zero.kld, Math.log(2), 1e-12, "KL with p_base = 0"); // 1 * ln(1 / 0.5)
  assert.throws(() => compareRow(base, test, 0, 2, 2), /target token 2/);
});

test("statistics: median, percentile, mean and standard error as llama-perplexity computes them", () => {
  assert.equal(medianOfSorted([1, 2, 3, 4]), 2.5);
  assert.equal(medianOfSorted([1, 2, 9]), 2);
  close(percentileOfSorted([1, 2, 3, 4], 0.99), 3.97, 1e-12, "p99"); // 0.99 * 3 = 2.97 -> 0.03 * 3 + 0.97 * 4
  assert.equal(percentileOfSorted([1, 2, 3, 4], 0.5), 2.5);
  assert.equal(percentileOfSorted([1, 2, 3, 4], 1), 4);
  const values = Array.from({ length: 11 }, (_, i) => i + 1); // 1..11: mean 6, population variance 10
  const s = meanAndStderr(values.reduce((a, b) => a + b), values.reduce((a, b) => a + b * b, 0), 11);
  close(s.mean, 6, 1e-12, "mean");
  close(s.stderr, 1, 1e-12, "stderr"); // sqrt(10 / (11 - 1))
  assert.equal(meanAndStderr(55, 385, 10).stderr, 0, "no uncertainty for 10 values or fewer");
});

test("PerplexityAccumulator: exp(mean NLL) with llama-perplexity's standard error", () => {
  const acc = new PerplexityAccumulator();
  for (const nll of [1, 2, 3]) acc.addNll(nll);
  const s = acc.summary();
  close(s.ppl, Math.exp(2), 1e-12, "ppl");
  close(s.pplStderr, Math.exp(2) * Math.sqrt(2 / 3 / 2), 1e-12, "stderr"); // variance 14/3 - 4 = 2/3
  assert.equal(s.nTokens, 3);
});

test("KldAccumulator.addChunk scores only the second half of a chunk", () => {
  // ctx 6: rows 3 and 4 are scored, predicting tokens chunk[4] and chunk[5]; other rows hold junk that must be ignored.
  const nVocab = 2;
  const chunk = [1, 0, 0, 0, 1, 0];
  const base = new Float32Array(6 * nVocab).fill(50); // (6, 2)
  const test = new Float32Array(6 * nVocab).fill(-50); // (6, 2)
  base.set([Math.log(0.5), Math.log(0.5)], 3 * nVocab);
  test.set([Math.log(0.25), Math.log(0.75)], 3 * nVocab);
  base.set([Math.log(0.9), Math.log(0.1)], 4 * nVocab);
  test.set([Math.log(0.9), Math.log(0.1)], 4 * nVocab);
  base[0] = 1e6; // junk in an unscored row
  const acc = new KldAccumulator(nVocab);
  acc.addChunk(base, test, chunk);
  const s = acc.summary();
  assert.equal(s.count, 2);
  const kl0 = 0.5 * Math.log(4 / 3);
  close(s.kldMean, kl0 / 2, 1e-7, "mean KLD");
  close(s.kldMedian, kl0 / 2, 1e-7, "median KLD");
  close(s.kldMax, kl0, 1e-7, "max KLD");
  close(s.kldP99, 0.01 * 0 + 0.99 * kl0, 1e-7, "p99 KLD");
  assert.equal(s.sameTopFraction, 0.5);
  // targets: row 3 -> token 1, row 4 -> token 0
  close(s.pplBase, Math.exp((Math.log(2) - Math.log(0.9)) / 2), 1e-6, "base ppl");
  close(s.ppl, Math.exp((-Math.log(0.75) - Math.log(0.9)) / 2), 1e-6, "test ppl");
  close(s.deltaPplPct, 100 * (s.ppl / s.pplBase - 1), 1e-12, "delta ppl");
  assert.throws(() => acc.addChunk(base.subarray(2), test, chunk), /expected ctx 6 x nVocab 2/);
});
