/**
 * Byte-level BPE tokenizer (`tokenizer.ggml.model = "gpt2"`), giving llama.cpp's token ids (llm_tokenizer_bpe):
 *
 * 1. Special-token split (special.ts): user-defined tokens, and with parseSpecial control/unknown tokens, are cut out.
 * 2. Each text fragment is cut into words by the pre-tokenizer `tokenizer.ggml.pre` names (pretokenize.ts).
 * 3. Each word's UTF-8 bytes are shown as GPT-2 byte characters (byte-level.ts). With ignore_merges (Llama 3), a word
 *    that is a token as a whole is that token. Otherwise every byte character starts as a symbol; every adjacent pair
 *    listed in tokenizer.ggml.merges enters a queue ordered by merge rank (lowest first; ties: leftmost first); the
 *    best pair is merged, its neighbours' new pairs are queued, stale entries are skipped, until none is left.
 * 4. Each final symbol is its token; a symbol that is not a token falls back to the tokens of its single bytes
 *    (of the byte-level text, so only printable ASCII can be found), silently skipping bytes without one.
 *
 * Decoding turns each token's byte characters back into bytes; llama.cpp's clean_spaces (per pre-tokenizer) then
 * removes spaces before . , ! ? and in a few apostrophe contractions.
 */
import type { Tokenizer, EncodeOptions, DecodeOptions } from "./index.js";
import { byteLevelEncode, codePointToUtf8, codePointsFromUtf8 } from "./byte-level.js";
import { preTokenize, type PreTokenizer } from "./pretokenize.js";
import { splitSpecialTokens } from "./special.js";
import { TokenizerError, mergeKey, utf8ByteString, type Vocab } from "./vocab.js";

/** Byte length of a UTF-8 sequence from its lead byte (llama.cpp's unicode_len_utf8). */
function utf8SequenceLength(leadByte: number): number {
  const high = leadByte >> 4;
  return high < 12 ? 1 : high < 14 ? 2 : high === 14 ? 3 : 4;
}

/** Min-heap of candidate merges keyed (rank asc, left position asc). Parallel arrays instead of objects. */
class MergeQueue {
  private left: Int32Array = new Int32Array(64); // (capacity) left symbol index
  private right: Int32Array = new Int32Array(64); // (capacity) right symbol index
  private size_: Int32Array = new Int32Array(64); // (capacity) byte length of the merged text
  private rank: Int32Array = new Int32Array(64); // (capacity) merge rank
  count = 0;

  clear(): void {
    this.count = 0;
  }

  private before(i: number, j: number): boolean {
    const ri = this.rank[i]!, rj = this.rank[j]!;
    return ri < rj || (ri === rj && this.left[i]! < this.left[j]!);
  }

  private swap(i: number, j: number): void {
    for (const a of [this.left, this.right, this.size_, this.rank]) {
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }

  push(left: number, right: number, rank: number, size: number): void {
    if (this.count === this.left.length) this.grow();
    let i = this.count++;
    this.left[i] = left; this.right[i] = right; this.rank[i] = rank; this.size_[i] = size;
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
    if (last === 0) return;
    this.left[0] = this.left[last]!; this.right[0] = this.right[last]!;
    this.rank[0] = this.rank[last]!; this.size_[0] = this.size_[last]!;
    for (let i = 0; ; ) {
      const l = 2 * i + 1, r = l + 1;
      let best = i;
      if (l < last && this.before(l, best)) best = l;
      if (r < last && this.before(r, best)) best = r;
      if (best === i) break;
      this.swap(i, best);
      i = best;
    }
  }

  private grow(): void {
    const cap = this.left.length * 2;
    const widen = (a: Int32Array): Int32Array => { const b = new Int32Array(cap); b.set(a); return b; };
    this.left = widen(this.left); this.right = widen(this.right); this.size_ = widen(this.size_); this.rank = widen(this.rank);
  }
}

/** Appends the tokens of one byte-level word (a byte string of GPT-2 byte characters) to `out`. */
export function bpeTokenizeWord(vocab: Vocab, ignoreMerges: boolean, word: string, out: number[], queue = new MergeQueue()): void {
  const nBytes = word.length;
  if (nBytes === 0) return;
  const whole = vocab.idByText.get(word);
  if (ignoreMerges && whole !== undefined) {
    out.push(whole);
    return;
  }
  const start = new Int32Array(nBytes); // (nSymbols) byte offset of each symbol
  const len = new Int32Array(nBytes); // (nSymbols) byte length; 0 once merged into its left neighbour
  const prev = new Int32Array(nBytes); // (nSymbols) previous live symbol, -1 at the start
  const next = new Int32Array(nBytes); // (nSymbols) next live symbol, -1 at the end
  let nSymbols = 0;
  for (let offset = 0; offset < nBytes; ) {
    const n = Math.min(utf8SequenceLength(word.charCodeAt(offset)), nBytes - offset);
    start[nSymbols] = offset;
    len[nSymbols] = n;
    prev[nSymbols] = nSymbols - 1;
    offset += n;
    next[nSymbols] = offset === nBytes ? -1 : nSymbols + 1;
    nSymbols++;
  }

  const ranks = vocab.mergeRanks;
  queue.clear();
  const tryAddPair = (left: number, right: number): void => {
    if (left === -1 || right === -1) return;
    const rank = ranks.get(mergeKey(word.substr(start[left]!, len[left]!), word.substr(start[right]!, len[right]!)));
    if (rank !== undefined) queue.push(left, right, rank, len[left]! + len[right]!);
  };
  for (let i = 1; i < nSymbols; i++) tryAddPair(i - 1, i);

  const top = new Int32Array(3); // [left, right, size]
  while (queue.count > 0) {
    queue.pop(top);
    const left = top[0]!, right = top[1]!, size = top[2]!;
    // Stale: a side was merged away, or the right side grew (the left side never moves its start).
    if (len[left] === 0 || len[right] === 0 || len[left]! + len[right]! !== size) continue;
    len[left] = size;
    len[right] = 0;
    next[left] = next[right]!;
    if (next[right]! >= 0) prev[next[right]!] = left;
    tryAddPair(prev[left]!, left);
    tryAddPair(left, next[left]!);
  }

  for (let i = 0; i !== -1; i = next[i]!) {
    const piece = word.substr(start[i]!, len[i]!);
    const id = vocab.idByText.get(piece);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    for (let b = 0; b < piece.length; b++) {
      const byteId = vocab.idByText.get(piece[b]!);
      if (byteId !== undefined) out.push(byteId);
    }
  }
}

/**
 * llama.cpp's clean_up_tokenization_spaces on a byte string: drop the space in " ?", " !", " .", " ,";
 * turn " ' " into "'"; drop the space in " 's", " 'm", " 're", " 've".
 */
export function cleanSpaces(bytes: string): string {
  return bytes
    .replace(/ ([?!.,])/g, "$1")
    .replace(/ ' /g, "'")
    .replace(/ '(?=[sm]|re|ve)/g, "'");
}

export class BpeTokenizer implements Tokenizer {
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly preTokenizer: PreTokenizer;
  private readonly queue = new MergeQueue();

  constructor(readonly vocab: Vocab) {
    if (!vocab.preTokenizer) {
      throw new TokenizerError("unsupported_model", `BpeTokenizer needs a "gpt2" vocabulary, found tokenizer.ggml.model ${JSON.stringify(vocab.model)}`);
    }
    this.preTokenizer = vocab.preTokenizer;
    this.vocabSize = vocab.size;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.addBos = vocab.addBos;
    this.addEos = vocab.addEos;
  }

  /** The byte-level words llama.cpp would merge for one text fragment (a byte string). */
  words(fragment: string): string[] {
    const cpts = codePointsFromUtf8(fragment);
    const words: string[] = [];
    let at = 0;
    for (const n of preTokenize(this.preTokenizer.splitter, cpts)) {
      let raw = "";
      for (let i = at; i < at + n; i++) raw += codePointToUtf8(cpts[i]!);
      words.push(byteLevelEncode(raw));
      at += n;
    }
    return words;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addSpecial = opts.addSpecial ?? true;
    const vocab = this.vocab;
    const out: number[] = [];
    if (addSpecial && vocab.addBos) out.push(vocab.bosId);
    const fragments = text.length === 0 ? [] : splitSpecialTokens(vocab, utf8ByteString(text), opts.parseSpecial ?? false);
    for (const fragment of fragments) {
      if (typeof fragment === "number") {
        out.push(fragment);
        continue;
      }
      for (const word of this.words(fragment)) bpeTokenizeWord(vocab, this.preTokenizer.ignoreMerges, word, out, this.queue);
    }
    if (addSpecial && vocab.addEos) out.push(vocab.eosId);
    return out;
  }

  tokenBytes(id: number, special = false): Uint8Array {
    return this.vocab.piece(id, special);
  }

  /** llama.cpp's detokenize: pieces concatenated (one leading space dropped with add_space_prefix), then clean_spaces. */
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
    let bytes = "";
    for (let i = begin; i < end; i++) {
      const piece = vocab.piece(ids[i]!, opts.renderSpecial ?? false);
      let from = stripSpace && piece.length > 0 && piece[0] === 0x20 ? 1 : 0;
      stripSpace = false;
      for (; from < piece.length; from++) bytes += String.fromCharCode(piece[from]!);
    }
    if (this.preTokenizer.cleanSpaces) bytes = cleanSpaces(bytes);
    const out = new Uint8Array(bytes.length); // (nBytes)
    for (let i = 0; i < bytes.length; i++) out[i] = bytes.charCodeAt(i);
    return out;
  }

  decode(ids: readonly number[], opts: DecodeOptions = {}): string {
    return new TextDecoder("utf-8", { ignoreBOM: true }).decode(this.decodeBytes(ids, opts));
  }

  isEog(id: number): boolean {
    return this.vocab.eogIds.has(id);
  }
}
