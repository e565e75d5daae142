/**
 * SentencePiece-style tokenizer (`tokenizer.ggml.model = "llama"`), giving llama.cpp's token ids (llm_tokenizer_spm):
 *
 * 1. Special-token split: user-defined tokens (and, with parseSpecial, control and unknown tokens) are cut out of
 *    the text first, longest text first; the pieces between them are tokenized separately.
 * 2. Each text piece gets a leading space when add_space_prefix is set and it starts the text or follows a special
 *    token; then every " " becomes "▁".
 * 3. The piece is split into UTF-8 characters; every adjacent pair whose concatenation is a token enters a priority
 *    queue ordered by that token's score (highest first; ties: leftmost first). The best pair is merged, its
 *    neighbours' new pairs are queued, stale entries are skipped, until the queue is empty.
 * 4. Each final symbol is its token, or (byte fallback) one "<0xHH>" token per UTF-8 byte.
 *
 * llama.cpp also keeps a table of merges to re-split symbols that are not tokens; with valid UTF-8 input every merged
 * symbol is a token and every unmerged one is a single character, so that path never runs and is not needed here.
 */
import type { Tokenizer, EncodeOptions, DecodeOptions } from "./index.js";
import { Vocab, utf8ByteString } from "./vocab.js";
import { splitSpecialTokens } from "./special.js";

export { splitSpecialTokens } from "./special.js";

const ESCAPED_SPACE = "\xE2\x96\x81"; // "▁" as UTF-8 bytes (a byte string)

/** Byte length of a UTF-8 sequence from its lead byte (llama.cpp's unicode_len_utf8: stray bytes count as 1). */
function utf8SequenceLength(leadByte: number): number {
  const high = leadByte >> 4;
  return high < 12 ? 1 : high < 14 ? 2 : high === 14 ? 3 : 4;
}

/**
 * Max-heap of candidate merges, keyed (score desc, left position asc). Parallel arrays instead of objects.
 */
class BigramQueue {
  private left: Int32Array = new Int32Array(64); // (capacity) left symbol index
  private right: Int32Array = new Int32Array(64); // (capacity) right symbol index
  private size_: Int32Array = new Int32Array(64); // (capacity) byte length of the merged text
  private score: Float32Array = new Float32Array(64); // (capacity) merged token's score
  count = 0;

  private before(i: number, j: number): boolean {
    const si = this.score[i]!, sj = this.score[j]!;
    return si > sj || (si === sj && this.left[i]! < this.left[j]!);
  }

  private swap(i: number, j: number): void {
    let t = this.left[i]!; this.left[i] = this.left[j]!; this.left[j] = t;
    t = this.right[i]!; this.right[i] = this.right[j]!; this.right[j] = t;
    t = this.size_[i]!; this.size_[i] = this.size_[j]!; this.size_[j] = t;
    const s = this.score[i]!; this.score[i] = this.score[j]!; this.score[j] = s;
  }

  push(left: number, right: number, score: number, size: number): void {
    if (this.count === this.left.length) this.grow();
    let i = this.count++;
    this.left[i] = left; this.right[i] = right; this.score[i] = score; this.size_[i] = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  /** Removes the top entry, writing it to `out` as [left, right, size]. */
  pop(out: Int32Array): void {
    out[0] = this.left[0]!; out[1] = this.right[0]!; out[2] = this.size_[0]!;
    const last = --this.count;
    if (last > 0) {
      this.left[0] = this.left[last]!; this.right[0] = this.right[last]!;
      this.score[0] = this.score[last]!; this.size_[0] = this.size_[last]!;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let best = i;
        if (l < last && this.before(l, best)) best = l;
        if (r < last && this.before(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
  }

  private grow(): void {
    const cap = this.left.length * 2;
    const left = new Int32Array(cap); left.set(this.left); this.left = left;
    const right = new Int32Array(cap); right.set(this.right); this.right = right;
    const size = new Int32Array(cap); size.set(this.size_); this.size_ = size;
    const score = new Float32Array(cap); score.set(this.score); this.score = score;
  }
}

/** Appends the SPM tokens of one escaped text piece (a byte string, spaces already "▁") to `out`. */
export function spmTokenizePiece(vocab: Vocab, text: string, out: number[]): void {
  const nBytes = text.length;
  if (nBytes === 0) return;
  const start = new Int32Array(nBytes); // (nSymbols) byte offset of each symbol
  const len = new Int32Array(nBytes); // (nSymbols) byte length; 0 once merged into its left neighbour
  const prev = new Int32Array(nBytes); // (nSymbols) previous live symbol, -1 at the start
  const next = new Int32Array(nBytes); // (nSymbols) next live symbol, -1 at the end
  let nSymbols = 0;
  for (let offset = 0; offset < nBytes; ) {
    const n = Math.min(utf8SequenceLength(text.charCodeAt(offset)), nBytes - offset);
    start[nSymbols] = offset;
    len[nSymbols] = n;
    prev[nSymbols] = nSymbols - 1;
    offset += n;
    next[nSymbols] = offset === nBytes ? -1 : nSymbols + 1;
    nSymbols++;
  }

  const idByText = vocab.idByText;
  const scores = vocab.scores;
  const queue = new BigramQueue();
  const tryAddBigram = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const size = len[left]! + len[right]!;
    const id = idByText.get(text.substr(start[left]!, size));
    if (id === undefined) return;
    queue.push(left, right, scores[id]!, size);
  };

  for (let i = 1; i < nSymbols; i++) tryAddBigram(i - 1, i);

  const top = new Int32Array(3); // [left, right, size]
  while (queue.count > 0) {
    queue.pop(top);
    const left = top[0]!, right = top[1]!, size = top[2]!;
    // Stale entry: one side was merged away or grew since this pair was queued.
    if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== size) continue;
    len[left] = size;
    len[right] = 0;
    next[left] = next[right]!;
    if (next[right]! >= 0) prev[next[right]!] = left;
    tryAddBigram(prev[left]!, left);
    tryAddBigram(left, next[left]!);
  }

  for (let i = 0; i !== -1; i = next[i]!) {
    const piece = text.substr(start[i]!, len[i]!);
    const id = idByText.get(piece);
    if (id !== undefined) {
      out.push(id);
    } else {
      for (let b = 0; b < piece.length; b++) out.push(vocab.byteToken(piece.charCodeAt(b)));
    }
  }
}

export class SpmTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;

  constructor(readonly vocab: Vocab) {
    this.vocabSize = vocab.size;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.addBos = vocab.addBos;
    this.addEos = vocab.addEos;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addSpecial = opts.addSpecial ?? true;
    const parseSpecial = opts.parseSpecial ?? false;
    const vocab = this.vocab;
    const out: number[] = [];
    if (addSpecial && vocab.addBos) out.push(vocab.bosId);
    const fragments = text.length === 0 ? [] : splitSpecialTokens(vocab, utf8ByteString(text), parseSpecial);
    let afterSpecial = true; // the start of the text counts as following a special token
    for (const fragment of fragments) {
      if (typeof fragment === "number") {
        out.push(fragment);
        afterSpecial = true;
        continue;
      }
      const prefixed = vocab.addSpacePrefix && afterSpecial ? " " + fragment : fragment;
      spmTokenizePiece(vocab, prefixed.split(" ").join(ESCAPED_SPACE), out);
      afterSpecial = false;
    }
    if (addSpecial && vocab.addEos) out.push(vocab.eosId);
    return out;
  }

  tokenBytes(id: number, special = false): Uint8Array {
    return this.vocab.piece(id, special);
  }

  /**
   * llama.cpp's detokenize: pieces concatenated; with add_space_prefix the first piece loses one leading space,
   * unless a BOS was removed (removeSpecial) first. A leading BOS that is kept renders as "" but still uses up that
   * one strip, so the next token keeps its space (this is what node-llama-cpp's model.detokenize returns).
   */
  decodeBytes(ids: readonly number[], opts: DecodeOptions = {}): Uint8Array {
    const vocab = this.vocab;
    let begin = 0;
    let end = ids.length;
    let stripSpace = vocab.addSpacePrefix;
    if (opts.removeSpecial && vocab.addBos && end > 0 && ids[0] === vocab.bosId) {
      stripSpace = false;
      begin++;
    }
    if (opts.removeSpecial && vocab.addEos && end > begin && ids[end - 1] === vocab.eosId) end--;
    const pieces: Uint8Array[] = [];
    let total = 0;
    for (let i = begin; i < end; i++) {
      let piece = vocab.piece(ids[i]!, opts.renderSpecial ?? false);
      if (stripSpace && piece.length > 0 && piece[0] === 0x20) piece = piece.subarray(1);
      stripSpace = false;
      pieces.push(piece);
      total += piece.length;
    }
    const bytes = new Uint8Array(total); // (nBytes)
    let offset = 0;
    for (const piece of pieces) {
      bytes.set(piece, offset);
      offset += piece.length;
    }
    return bytes;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(this.decodeBytes(ids, opts));
  }

  isEog(id: number): boolean {
    return this.vocab.eogIds.has(id);
  }
}
