/**
 * Base distributions for KL divergence: recorded from one run (usually an f32 cache), kept in memory for `compare`,
 * and saved to / read from a file for `perplexity --kl-divergence-base FILE` / `--kl-divergence FILE`.
 *
 * What is stored per scored position (the second half of each chunk):
 * - the target token's negative log-likelihood under the base (float64, for the base perplexity);
 * - the base's most likely token (int32, for the same-top-token fraction);
 * - the distribution, in one of two storages chosen by vocabulary size:
 *   "full"  (nVocab <= FULL_VOCAB_LIMIT): every log-probability as float32. Float32 rather than llama-perplexity's
 *           16-bit steps or f16: an f16 log-probability near -10 is off by up to 4e-3 nats, which alone would put a
 *           KL divergence of ~1e-6 on the scale and hide the ~1e-8 an f16 cache costs.
 *   "topk"  (larger vocabularies): the TOP_K most likely tokens' ids and log-probabilities (float32) and the log of
 *           the remaining mass (float64). KL divergence is then computed over the top K tokens plus one "rest" bucket:
 *           KL_topk = sum_top p_b (log p_b - log p_t) + P_rest_b (log P_rest_b - log P_rest_t), a lower bound of the
 *           full KL divergence (log-sum inequality) that equals it when the rest holds little mass.
 *
 * File layout (little-endian):
 *   0   8 bytes   magic "KVSKLDB1"
 *   8   uint32    header length H
 *   12  H bytes   header, UTF-8 JSON (KldBaseHeader: model, K/V config, text sha256, ctx, chunks, storage)
 *   then, zero-padded to a multiple of 8 bytes, the sections in this order:
 *     tokens   int32   (nChunks, ctx)        the evaluated chunks, BOS in place
 *     nll      float64 (nPositions)          nPositions = nChunks × scored positions per chunk
 *     argmax   int32   (nPositions)
 *     full:  logp     float32 (nPositions, nVocab)
 *     topk:  ids      int32   (nPositions, topK), logp float32 (nPositions, topK), restLogMass float64 (nPositions)
 *   The file's size must equal the header's sections exactly (a truncated or extended file is rejected).
 * Files are written atomically (temporary file, then rename).
 */
import { readFileSync } from "node:fs";
import { compareRow, RowScratch } from "./kld.js";
import { argmaxRow, logSoftmaxRow } from "./logprobs.js";
import { scoredRange } from "./chunks.js";
import type { Baseline, BaselineSink, EvalText, KldTally } from "./perplexity.js";
import type { KvPair } from "../api.js";
import { writeFileAtomic } from "../report/atomic.js";

export const KLD_FILE_MAGIC = "KVSKLDB1";
export const KLD_FILE_VERSION = 1;
/** Vocabularies up to this size store every log-probability. */
export const FULL_VOCAB_LIMIT = 4096;
/** Tokens kept per position for larger vocabularies. */
export const TOP_K = 128;
/** Header JSON longer than this is not a header of ours. */
const MAX_HEADER_BYTES = 1 << 20;

export type KldStorage = "full" | "topk";

/** What the header names: enough to refuse a comparison of different texts, contexts or vocabularies. */
export interface KldBaseHeader {
  format: "kvsplit-kld-base";
  version: number;
  model: { name: string; n_vocab: number; n_layers: number; dim: number };
  /** The run's K/V formats: one pair, or "mixed" sides with the schedule's layers. */
  kv: KldBaseKv;
  rotation: boolean;
  text_sha256: string;
  n_text_tokens: number;
  ctx: number;
  n_chunks: number;
  /** First scored position of each chunk and scored positions per chunk. */
  first: number;
  scored_per_chunk: number;
  n_vocab: number;
  storage: KldStorage;
  /** Tokens kept per position ("topk"), or n_vocab ("full"). */
  top_k: number;
  ppl: number;
}

/** A KL-divergence base file that is missing, damaged, or does not match the run. */
export class KldFileError extends Error {
  constructor(readonly file: string, readonly problem: string) {
    super(`${file}: ${problem}`);
    this.name = "KldFileError";
  }
}

/** Header fields known before the run (the rest come from the recording and the text). */
export interface KldBaseKv {
  k: string;
  v: string;
  layers?: readonly KvPair[];
  window?: number;
  sinks?: number;
}

export interface KldBaseIdentity {
  model: KldBaseHeader["model"];
  /** The run's K/V formats: one pair, or "mixed" sides with the schedule's layers. */
  kv: KldBaseKv;
  rotation: boolean;
}

/** Base distributions in memory: filled by a run (BaselineSink), compared against by later runs (Baseline). */
export class BaselineDistributions implements Baseline, BaselineSink {
  readonly storage: KldStorage;
  readonly topK: number;
  readonly first: number;
  readonly scoredPerChunk: number;
  readonly tokens: Int32Array; // (nChunks, ctx)
  readonly nll: Float64Array; // (nPositions)
  readonly argmax: Int32Array; // (nPositions)
  readonly logp: Float32Array; // full: (nPositions, nVocab); topk: (nPositions, topK)
  readonly topIds: Int32Array; // topk: (nPositions, topK); full: empty
  readonly restLogMass: Float64Array; // topk: (nPositions); full: empty
  private readonly recorded: Uint8Array; // (nChunks) 1 once a chunk is recorded
  private readonly scratch: RowScratch;
  private readonly mask: Uint8Array; // (nVocab) topk comparison scratch

  constructor(
    readonly nVocab: number,
    readonly ctx: number,
    readonly nChunks: number,
    storage?: KldStorage,
  ) {
    this.storage = storage ?? (nVocab <= FULL_VOCAB_LIMIT ? "full" : "topk");
    this.topK = this.storage === "full" ? nVocab : Math.min(TOP_K, nVocab);
    const { first, count } = scoredRange(ctx);
    this.first = first;
    this.scoredPerChunk = count;
    const nPositions = nChunks * count;
    this.tokens = new Int32Array(nChunks * ctx);
    this.nll = new Float64Array(nPositions);
    this.argmax = new Int32Array(nPositions);
    this.logp = new Float32Array(nPositions * this.topK);
    this.topIds = new Int32Array(this.storage === "topk" ? nPositions * this.topK : 0);
    this.restLogMass = new Float64Array(this.storage === "topk" ? nPositions : 0);
    this.recorded = new Uint8Array(nChunks);
    this.scratch = new RowScratch(nVocab);
    this.mask = new Uint8Array(this.storage === "topk" ? nVocab : 0);
  }

  get nPositions(): number {
    return this.nChunks * this.scoredPerChunk;
  }

  /** True once every chunk has been recorded (or read). */
  get complete(): boolean {
    return this.recorded.every((r) => r === 1);
  }

  markAllRecorded(): void {
    this.recorded.fill(1);
  }

  /** The recorded chunks' tokens, as an EvalText's chunks. */
  chunkTokens(): number[][] {
    return Array.from({ length: this.nChunks }, (_, c) => Array.from(this.tokens.subarray(c * this.ctx, (c + 1) * this.ctx)));
  }

  /**
   * Record a batch of chunk `chunk`'s logits: (n, nVocab) for rows firstRow .. firstRow + n − 1 of `tokens` (the
   * chunk's ctx tokens); rows in the scored half are kept. The chunk counts as recorded once its last row is in.
   */
  addRows(chunk: number, tokens: readonly number[], firstRow: number, logits: Float32Array): void {
    const { nVocab, ctx } = this;
    if (!(chunk >= 0 && chunk < this.nChunks)) throw new RangeError(`chunk ${chunk} is outside 0..${this.nChunks - 1}`);
    if (tokens.length !== ctx) throw new RangeError(`chunk ${chunk} has ${tokens.length} tokens, expected ${ctx}`);
    const n = logits.length / nVocab;
    if (!Number.isInteger(n) || firstRow < 0 || firstRow + n > ctx) throw new RangeError(`chunk ${chunk}: rows ${firstRow} .. of ${logits.length} logits do not fit ${ctx} x ${nVocab}`);
    if (firstRow === 0) this.tokens.set(tokens, chunk * ctx);
    const lp = this.scratch.base;
    for (let row = Math.max(firstRow, this.first); row < Math.min(firstRow + n, this.first + this.scoredPerChunk); row++) {
      const pos = chunk * this.scoredPerChunk + (row - this.first);
      logSoftmaxRow(logits, row - firstRow, nVocab, lp);
      this.nll[pos] = -lp[tokens[row + 1]];
      this.argmax[pos] = argmaxRow(logits, row - firstRow, nVocab);
      if (this.storage === "full") {
        this.logp.set(lp.subarray(0, nVocab), pos * nVocab);
      } else {
        this.storeTopK(pos, lp);
      }
    }
    if (firstRow + n === ctx) this.recorded[chunk] = 1;
  }

  /** A whole chunk's logits (ctx, nVocab) at once: addRows from row 0. */
  addChunk(chunk: number, tokens: readonly number[], logits: Float32Array): void {
    if (logits.length !== this.ctx * this.nVocab) throw new RangeError(`chunk ${chunk} logits hold ${logits.length} values, expected ${this.ctx} x ${this.nVocab}`);
    this.addRows(chunk, tokens, 0, logits);
  }

  private storeTopK(pos: number, lp: Float64Array): void {
    const k = this.topK;
    const order = Array.from({ length: this.nVocab }, (_, i) => i);
    order.sort((a, b) => lp[b] - lp[a] || a - b);
    let rest = 0;
    for (let j = k; j < order.length; j++) rest += Math.exp(lp[order[j]]);
    for (let j = 0; j < k; j++) {
      this.topIds[pos * k + j] = order[j];
      this.logp[pos * k + j] = lp[order[j]];
    }
    this.restLogMass[pos] = Math.log(rest);
  }

  comparePosition(chunk: number, index: number, testLogits: Float32Array, row: number, target: number, tally: KldTally): void {
    if (this.recorded[chunk] !== 1) throw new RangeError(`baseline chunk ${chunk} was never recorded`);
    const pos = chunk * this.scoredPerChunk + index;
    const nVocab = this.nVocab;
    if (this.storage === "full") {
      const base = this.logp.subarray(pos * nVocab, (pos + 1) * nVocab);
      const test = testLogits.subarray(row * nVocab, (row + 1) * nVocab);
      const c = compareRow(base, test, 0, nVocab, target, this.scratch);
      tally.add(c.kld, c.sameTop, this.nll[pos], c.nllTest);
      return;
    }
    const lt = this.scratch.test;
    logSoftmaxRow(testLogits, row, nVocab, lt);
    const k = this.topK;
    let kld = 0;
    for (let j = 0; j < k; j++) {
      const id = this.topIds[pos * k + j];
      const lb = this.logp[pos * k + j];
      this.mask[id] = 1;
      if (lb !== -Infinity) kld += Math.exp(lb) * (lb - lt[id]);
    }
    let restTest = 0;
    for (let i = 0; i < nVocab; i++) {
      if (this.mask[i] === 0) restTest += Math.exp(lt[i]);
      else this.mask[i] = 0;
    }
    const restBase = this.restLogMass[pos];
    if (restBase !== -Infinity) kld += Math.exp(restBase) * (restBase - Math.log(restTest));
    tally.add(kld, argmaxRow(testLogits, row, nVocab) === this.argmax[pos], this.nll[pos], -lt[target]);
  }
}

/** Save a complete recording with its header; returns the header written. */
export function writeKldBase(file: string, base: BaselineDistributions, identity: KldBaseIdentity, evalText: EvalText, ppl: number): KldBaseHeader {
  if (!base.complete) throw new RangeError("the baseline is incomplete: every chunk must be recorded before it is saved");
  const header: KldBaseHeader = {
    format: "kvsplit-kld-base",
    version: KLD_FILE_VERSION,
    ...identity,
    text_sha256: evalText.textSha256,
    n_text_tokens: evalText.nTextTokens,
    ctx: base.ctx,
    n_chunks: base.nChunks,
    first: base.first,
    scored_per_chunk: base.scoredPerChunk,
    n_vocab: base.nVocab,
    storage: base.storage,
    top_k: base.topK,
    ppl,
  };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(padTo8(12 + json.length));
  prefix.write(KLD_FILE_MAGIC, 0, "latin1");
  prefix.writeUInt32LE(json.length, 8);
  json.copy(prefix, 12);
  const parts: Uint8Array[] = [prefix, bytesOf(base.tokens), bytesOf(base.nll), bytesOf(base.argmax)];
  if (base.storage === "topk") parts.push(bytesOf(base.topIds), bytesOf(base.logp), bytesOf(base.restLogMass));
  else parts.push(bytesOf(base.logp));
  writeFileAtomic(file, parts);
  return header;
}

export interface KldBaseFile {
  header: KldBaseHeader;
  base: BaselineDistributions;
}

/** Read a file written by writeKldBase; every problem is a KldFileError naming what was expected and found. */
export function readKldBase(file: string): KldBaseFile {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new KldFileError(file, `cannot read the KL-divergence base file: ${(err as Error).message}`);
  }
  if (bytes.length < 12 || bytes.toString("latin1", 0, 8) !== KLD_FILE_MAGIC) {
    throw new KldFileError(file, `not a kvsplit KL-divergence base file (expected magic '${KLD_FILE_MAGIC}'; write one with --kl-divergence-base FILE)`);
  }
  const headerLength = bytes.readUInt32LE(8);
  if (headerLength > MAX_HEADER_BYTES || 12 + headerLength > bytes.length) {
    throw new KldFileError(file, `header length ${headerLength} does not fit the file of ${bytes.length} bytes`);
  }
  let header: KldBaseHeader;
  try {
    header = JSON.parse(bytes.toString("utf8", 12, 12 + headerLength)) as KldBaseHeader;
  } catch (err) {
    throw new KldFileError(file, `header is not valid JSON: ${(err as Error).message}`);
  }
  checkHeader(file, header);
  const base = new BaselineDistributions(header.n_vocab, header.ctx, header.n_chunks, header.storage);
  if (base.topK !== header.top_k || base.first !== header.first || base.scoredPerChunk !== header.scored_per_chunk) {
    throw new KldFileError(file, `header top_k ${header.top_k} / first ${header.first} / scored ${header.scored_per_chunk} disagree with ctx ${header.ctx} and storage ${header.storage}`);
  }
  const sections: ArrayBufferView[] = [base.tokens, base.nll, base.argmax];
  if (base.storage === "topk") sections.push(base.topIds, base.logp, base.restLogMass);
  else sections.push(base.logp);
  let offset = padTo8(12 + headerLength);
  const expected = offset + sections.reduce((n, s) => n + s.byteLength, 0);
  if (bytes.length !== expected) {
    throw new KldFileError(file, `size ${bytes.length} bytes, expected ${expected} for ${header.n_chunks} chunks of ${header.ctx} tokens (${header.storage} storage): the file is truncated or damaged`);
  }
  for (const s of sections) {
    new Uint8Array(s.buffer, s.byteOffset, s.byteLength).set(bytes.subarray(offset, offset + s.byteLength));
    offset += s.byteLength;
  }
  for (let i = 0; i < base.tokens.length; i++) {
    const t = base.tokens[i];
    if (t < 0 || t >= header.n_vocab) throw new KldFileError(file, `token ${t} at index ${i} is outside the vocabulary 0..${header.n_vocab - 1}`);
  }
  base.markAllRecorded();
  return { header, base };
}

function checkHeader(file: string, h: KldBaseHeader): void {
  const bad = (what: string): never => {
    throw new KldFileError(file, `header: ${what}`);
  };
  if (h === null || typeof h !== "object") bad("not an object");
  if (h.format !== "kvsplit-kld-base") bad(`format '${String(h.format)}', expected 'kvsplit-kld-base'`);
  if (h.version !== KLD_FILE_VERSION) bad(`version ${h.version}, this kvsplit reads version ${KLD_FILE_VERSION}`);
  const positive = (name: keyof KldBaseHeader, max: number): void => {
    const v = h[name];
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1 || v > max) bad(`${name} ${String(v)}, expected an integer 1..${max}`);
  };
  positive("n_vocab", 1 << 22);
  positive("ctx", 1 << 22);
  positive("n_chunks", 1 << 20);
  if (h.ctx < 2) bad(`ctx ${h.ctx}, expected at least 2`);
  if (h.storage !== "full" && h.storage !== "topk") bad(`storage '${String(h.storage)}', expected 'full' or 'topk'`);
  if (typeof h.text_sha256 !== "string" || !/^[0-9a-f]{64}$/.test(h.text_sha256)) bad(`text_sha256 '${String(h.text_sha256)}' is not a sha256 hex digest`);
  if (!h.model || typeof h.model.name !== "string") bad("model.name missing");
}

export interface BaseMatchInput {
  nVocab: number;
  modelName: string;
  /** sha256 of the text given with -f, if any. */
  textSha256?: string;
  ctx?: number;
  chunks?: number;
}

/**
 * Check a base file against the run about to be compared: a different vocabulary, text or context is an error;
 * a different model name is allowed (comparing a quantized model with its base is the point) and returned as a note.
 */
export function checkBaseMatches(file: string, header: KldBaseHeader, run: BaseMatchInput): string[] {
  const notes: string[] = [];
  if (header.n_vocab !== run.nVocab) {
    throw new KldFileError(file, `the base has a vocabulary of ${header.n_vocab} tokens, the model ${run.nVocab}: not the same tokenizer`);
  }
  if (run.textSha256 !== undefined && run.textSha256 !== header.text_sha256) {
    throw new KldFileError(file, `the base was computed on a different text (sha256 ${header.text_sha256.slice(0, 12)}…, -f gives ${run.textSha256.slice(0, 12)}…)`);
  }
  if (run.ctx !== undefined && run.ctx !== header.ctx) {
    throw new KldFileError(file, `the base was computed with -c ${header.ctx}, this run asks for -c ${run.ctx}`);
  }
  if (run.chunks !== undefined && run.chunks > header.n_chunks) {
    throw new KldFileError(file, `the base holds ${header.n_chunks} chunks, this run asks for --chunks ${run.chunks}`);
  }
  if (header.model.name !== run.modelName) notes.push(`the base was computed with model '${header.model.name}', this run uses '${run.modelName}'`);
  return notes;
}

function padTo8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
