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
import { ESCAPED_SPACE, type Vocab } from "./vocab.js";
import { mergeSymbols } from "./symbol-merge.js";
import { VocabTokenizer } from "./vocab-tokenizer.js";

export { splitSpecialTokens } from "./special.js";

/** Appends the SPM tokens of one escaped text piece (a byte string, spaces already "▁") to `out`. */
export function spmTokenizePiece(vocab: Vocab, text: string, out: number[]): void {
  const idByText = vocab.idByText;
  const scores = vocab.scores;
  // A pair merges when its text is a token; the highest score first (the queue takes the lowest priority first).
  const negatedScore = (start: number, leftLen: number, rightLen: number): number | undefined => {
    const id = idByText.get(text.substr(start, leftLen + rightLen));
    return id === undefined ? undefined : -scores[id]!;
  };
  for (const symbol of mergeSymbols(text, negatedScore)) {
    const id = idByText.get(symbol);
    if (id !== undefined) {
      out.push(id);
    } else {
      for (let b = 0; b < symbol.length; b++) out.push(vocab.byteToken(symbol.charCodeAt(b)));
    }
  }
}

export class SpmTokenizer extends VocabTokenizer {
  /** Gives a fragment that starts the text or follows a special token a leading space (add_space_prefix). */
  protected encodeFragment(fragment: string, followsSpecial: boolean, out: number[]): void {
    const prefixed = this.vocab.addSpacePrefix && followsSpecial ? " " + fragment : fragment;
    spmTokenizePiece(this.vocab, prefixed.split(" ").join(ESCAPED_SPACE), out);
  }
}
