/**
 * The KL-divergence base (eval/kld-file.ts): recorded distributions compare exactly as kld.ts's KldAccumulator compares
 * full logits (the independent reference), survive a save/read round trip bit for bit, the top-k storage is a close
 * lower bound of the full KL divergence, and damaged or mismatched files are refused with messages that say why.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { BaselineDistributions, checkBaseMatches, KldFileError, readKldBase, writeKldBase, type KldBaseHeader } from "../../src/eval/kld-file.js";
import { KldAccumulator } from "../../src/eval/kld.js";
import { KldTally, type EvalText } from "../../src/eval/perplexity.js";
import { scoredRange } from "../../src/eval/chunks.js";

/** Deterministic pseudo-random numbers in [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Logits (ctx, nVocab) with a spread `scale`; tokens (ctx) in the vocabulary. */
function fakeChunk(seed: number, ctx: number, nVocab: number, scale: number): { tokens: number[]; logits: Float32Array } {
  const r = rng(seed);
  const logits = new Float32Array(ctx * nVocab);
  for (let i = 0; i < logits.length; i++) logits[i] = scale * (r() - 0.5) * (r() < 0.05 ? 4 : 1);
  const tokens = Array.from({ length: ctx }, () => Math.floor(r() * nVocab));
  return { tokens, logits };
}

/** A test run: the base logits plus a perturbation. */
function perturb(logits: Float32Array, seed: number, size: number): Float32Array {
  const r = rng(seed);
  return logits.map((x) => x + size * (r() - 0.5));
}

const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), "kvsplit-kld-"));
const identity = { model: { name: "fake", n_vocab: 0, n_layers: 1, dim: 8 }, kv: { k: "f32" as const, v: "f32" as const }, rotation: true };

function evalTextOf(chunks: number[][], ctx: number): EvalText {
  return { textSha256: "a".repeat(64), nTextTokens: chunks.length * ctx + 3, ctx, chunks };
}

test("full storage: comparisons equal KldAccumulator on the full logits, before and after a save/read round trip", () => {
  const nVocab = 40;
  const ctx = 16;
  const nChunks = 3;
  const base = new BaselineDistributions(nVocab, ctx, nChunks);
  assert.equal(base.storage, "full");
  const chunks = Array.from({ length: nChunks }, (_, c) => fakeChunk(c + 1, ctx, nVocab, 6));
  chunks.forEach((ch, c) => base.addChunk(c, ch.tokens, ch.logits));
  const tests = chunks.map((ch, c) => perturb(ch.logits, 100 + c, 0.3));

  const reference = new KldAccumulator(nVocab);
  chunks.forEach((ch, c) => reference.addChunk(ch.logits, tests[c], ch.tokens));
  const want = reference.summary();

  const { first, count } = scoredRange(ctx);
  const tallyOf = (b: BaselineDistributions): KldTally => {
    const tally = new KldTally();
    chunks.forEach((ch, c) => {
      for (let i = 0; i < count; i++) b.comparePosition(c, i, tests[c], first + i, ch.tokens[first + i + 1], tally);
    });
    return tally;
  };
  const got = tallyOf(base).summary();
  assert.equal(got.count, want.count);
  assert.ok(Math.abs(got.kldMean / want.kldMean - 1) < 1e-6, `kld ${got.kldMean} vs ${want.kldMean}`);
  assert.ok(Math.abs(got.kldP99 / want.kldP99 - 1) < 1e-6);
  assert.equal(got.sameTopFraction, want.sameTopFraction);
  assert.ok(Math.abs(got.ppl / want.ppl - 1) < 1e-6);
  assert.ok(Math.abs(got.pplBase / want.pplBase - 1) < 1e-9);
  assert.ok(Math.abs(got.deltaPplPct - want.deltaPplPct) < 1e-4, `Δppl ${got.deltaPplPct} vs ${want.deltaPplPct}`);
  assert.ok(got.deltaPplPctStderr > 0);

  const dir = tmp();
  try {
    const file = path.join(dir, "base.kld");
    writeKldBase(file, base, identity, evalTextOf(chunks.map((c) => c.tokens), ctx), want.pplBase);
    assert.deepEqual(readdirSync(dir), ["base.kld"], "no temporary file left behind");
    const { header, base: back } = readKldBase(file);
    assert.equal(header.storage, "full");
    assert.equal(header.n_chunks, nChunks);
    assert.equal(header.ctx, ctx);
    assert.deepEqual(back.logp, base.logp);
    assert.deepEqual(back.nll, base.nll);
    assert.deepEqual(back.chunkTokens(), chunks.map((c) => c.tokens));
    const again = tallyOf(back).summary();
    assert.equal(again.kldMean, got.kldMean);
    assert.equal(again.ppl, got.ppl);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("top-k storage: a lower bound of the full KL divergence, within 1% when the rest holds little mass", () => {
  const nVocab = 600;
  const ctx = 8;
  for (const [scale, maxGap] of [
    [40, 0.01], // peaked: the top 128 hold nearly all the mass
    [2, 1], // flat: only the bound holds
  ] as const) {
    const full = new BaselineDistributions(nVocab, ctx, 1, "full");
    const topk = new BaselineDistributions(nVocab, ctx, 1, "topk");
    assert.equal(topk.topK, 128);
    const ch = fakeChunk(7, ctx, nVocab, scale);
    full.addChunk(0, ch.tokens, ch.logits);
    topk.addChunk(0, ch.tokens, ch.logits);
    const test = perturb(ch.logits, 9, 0.5);
    const { first, count } = scoredRange(ctx);
    const a = new KldTally();
    const b = new KldTally();
    for (let i = 0; i < count; i++) {
      full.comparePosition(0, i, test, first + i, ch.tokens[first + i + 1], a);
      topk.comparePosition(0, i, test, first + i, ch.tokens[first + i + 1], b);
    }
    const fa = a.summary();
    const fb = b.summary();
    assert.ok(fb.kldMean <= fa.kldMean * (1 + 1e-9), `top-k ${fb.kldMean} must not exceed full ${fa.kldMean}`);
    assert.ok(fb.kldMean >= fa.kldMean * (1 - maxGap), `scale ${scale}: top-k ${fb.kldMean} vs full ${fa.kldMean}`);
    assert.equal(fb.ppl, fa.ppl, "perplexities use the stored target log-likelihoods, not the top k");
    assert.equal(fb.sameTopFraction, fa.sameTopFraction);

    const dir = tmp();
    try {
      const file = path.join(dir, "topk.kld");
      writeKldBase(file, topk, identity, evalTextOf([ch.tokens], ctx), fa.pplBase);
      const back = readKldBase(file).base;
      assert.deepEqual(back.topIds, topk.topIds);
      assert.deepEqual(back.restLogMass, topk.restLogMass);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
});

test("damaged base files are refused with a reason", () => {
  const dir = tmp();
  try {
    const ctx = 8;
    const base = new BaselineDistributions(20, ctx, 2);
    const chunks = [fakeChunk(1, ctx, 20, 4), fakeChunk(2, ctx, 20, 4)];
    assert.throws(() => writeKldBase(path.join(dir, "x"), base, identity, evalTextOf([], ctx), 1), /incomplete/);
    chunks.forEach((c, i) => base.addChunk(i, c.tokens, c.logits));
    const good = path.join(dir, "good.kld");
    writeKldBase(good, base, identity, evalTextOf(chunks.map((c) => c.tokens), ctx), 1);
    const bytes = readFileSync(good);

    const variant = (name: string, data: Uint8Array): string => {
      const p = path.join(dir, name);
      writeFileSync(p, data);
      return p;
    };
    assert.throws(() => readKldBase(path.join(dir, "missing.kld")), (e: unknown) => e instanceof KldFileError && /cannot read/.test(e.message));
    assert.throws(() => readKldBase(variant("text.kld", Buffer.from("hello world, not a base file"))), /not a kvsplit KL-divergence base file/);
    assert.throws(() => readKldBase(variant("short.kld", bytes.subarray(0, bytes.length - 5))), /truncated or damaged/);
    assert.throws(() => readKldBase(variant("long.kld", Buffer.concat([bytes, Buffer.alloc(8)]))), /truncated or damaged/);
    const badHeader = Buffer.from(bytes);
    badHeader.writeUInt32LE(0x7fffffff, 8);
    assert.throws(() => readKldBase(variant("hdr.kld", badHeader)), /header length/);
    // A header edited to another version (same length: "version":1 -> "version":9).
    const text = bytes.toString("latin1");
    const edited = Buffer.from(text.replace('"version":1', '"version":9'), "latin1");
    assert.throws(() => readKldBase(variant("ver.kld", edited)), /version 9, this kvsplit reads version 1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a base is checked against the run: vocabulary, text, context, chunks are errors; another model name is a note", () => {
  const header = {
    n_vocab: 512,
    text_sha256: "b".repeat(64),
    ctx: 512,
    n_chunks: 4,
    model: { name: "tiny", n_vocab: 512, n_layers: 1, dim: 8 },
  } as KldBaseHeader;
  const ok = { nVocab: 512, modelName: "tiny", textSha256: "b".repeat(64), ctx: 512, chunks: 4 };
  assert.deepEqual(checkBaseMatches("f", header, ok), []);
  assert.throws(() => checkBaseMatches("f", header, { ...ok, nVocab: 32000 }), /vocabulary of 512 tokens, the model 32000/);
  assert.throws(() => checkBaseMatches("f", header, { ...ok, textSha256: "c".repeat(64) }), /different text/);
  assert.throws(() => checkBaseMatches("f", header, { ...ok, ctx: 256 }), /-c 512, this run asks for -c 256/);
  assert.throws(() => checkBaseMatches("f", header, { ...ok, chunks: 5 }), /holds 4 chunks/);
  const notes = checkBaseMatches("f", header, { ...ok, modelName: "tiny-q8" });
  assert.equal(notes.length, 1);
  assert.match(notes[0], /'tiny'.*'tiny-q8'/);
});

test("a chunk recorded batch by batch (addRows, uneven batches) equals the whole chunk at once (addChunk)", () => {
  const nVocab = 50;
  const ctx = 12;
  const ch = fakeChunk(3, ctx, nVocab, 5);
  for (const storage of ["full", "topk"] as const) {
    const whole = new BaselineDistributions(nVocab, ctx, 1, storage);
    whole.addChunk(0, ch.tokens, ch.logits);
    const batched = new BaselineDistributions(nVocab, ctx, 1, storage);
    for (const [first, n] of [[0, 5], [5, 2], [7, 5]] as const) {
      assert.equal(batched.complete, false, `${storage}: not complete before row ${first}`);
      batched.addRows(0, ch.tokens, first, ch.logits.subarray(first * nVocab, (first + n) * nVocab));
    }
    assert.equal(batched.complete, true);
    const test = perturb(ch.logits, 4, 0.5);
    const { first, count } = scoredRange(ctx);
    const a = new KldTally();
    const b = new KldTally();
    for (let i = 0; i < count; i++) {
      whole.comparePosition(0, i, test, first + i, ch.tokens[first + i + 1], a);
      batched.comparePosition(0, i, test, first + i, ch.tokens[first + i + 1], b);
    }
    assert.deepEqual(b.summary(), a.summary(), storage);
  }
  const base = new BaselineDistributions(nVocab, ctx, 1, "full");
  assert.throws(() => base.addRows(0, ch.tokens, 10, ch.logits.subarray(0, 5 * nVocab)), /rows 10 \.\. of 250 logits do not fit 12 x 50/);
});
