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
import { byteLevelEncode, codePointToUtf8, codePointsFromUtf8 } from "./byte-level.js";
import { preTokenize, type PreTokenizer } from "./pretokenize.js";
import { mergeSymbols, PairQueue } from "./symbol-merge.js";
import { VocabTokenizer } from "./vocab-tokenizer.js";
import type { DecodeOptions } from "./index.js";
import { TokenizerError, mergeKey, type Vocab } from "./vocab.js";

/** Appends the tokens of one byte-level word (a byte string of GPT-2 byte characters) to `out`. */
export function bpeTokenizeWord(vocab: Vocab, ignoreMerges: boolean, word: string, out: number[], queue = new PairQueue()): void {
  if (word.length === 0) return;
  const whole = vocab.idByText.get(word);
  if (ignoreMerges && whole !== undefined) {
    out.push(whole);
    return;
  }
  const ranks = vocab.mergeRanks;
  // A pair merges when tokenizer.ggml.merges lists it; the lowest rank first.
  const rankOf = (start: number, leftLen: number, rightLen: number): number | undefined =>
    ranks.get(mergeKey(word.substr(start, leftLen), word.substr(start + leftLen, rightLen)));
  for (const symbol of mergeSymbols(word, rankOf, queue)) {
    const id = vocab.idByText.get(symbol);
    if (id !== undefined) {
      out.push(id);
      continue;
    }
    for (let b = 0; b < symbol.length; b++) {
      const byteId = vocab.idByText.get(symbol[b]!);
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

export class BpeTokenizer extends VocabTokenizer {
  readonly preTokenizer: PreTokenizer;
  private readonly queue = new PairQueue();

  constructor(vocab: Vocab) {
    if (!vocab.preTokenizer) {
      throw new TokenizerError("unsupported_model", `BpeTokenizer needs a "gpt2" vocabulary, found tokenizer.ggml.model ${JSON.stringify(vocab.model)}`);
    }
    super(vocab);
    this.preTokenizer = vocab.preTokenizer;
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

  protected encodeFragment(fragment: string, _followsSpecial: boolean, out: number[]): void {
    for (const word of this.words(fragment)) bpeTokenizeWord(this.vocab, this.preTokenizer.ignoreMerges, word, out, this.queue);
  }

  /** llama.cpp's detokenize: pieces concatenated (one leading space dropped with add_space_prefix), then clean_spaces. */
  override decodeBytes(ids: readonly number[], opts: DecodeOptions = {}): Uint8Array {
    const joined = super.decodeBytes(ids, opts); // (nBytes)
    if (!this.preTokenizer.cleanSpaces) return joined;
    let bytes = "";
    for (let i = 0; i < joined.length; i++) bytes += String.fromCharCode(joined[i]!);
    bytes = cleanSpaces(bytes);
    const out = new Uint8Array(bytes.length); // (nBytes)
    for (let i = 0; i < bytes.length; i++) out[i] = bytes.charCodeAt(i);
    return out;
  }
}
