/**
 * What the SPM and BPE tokenizers share around their merge algorithms: BOS/EOS and the special-token split on the way
 * in (llama.cpp's tokenize), pieces joined on the way out (llama.cpp's detokenize), and the end-of-generation set.
 */
import type { Tokenizer, EncodeOptions, DecodeOptions } from "./index.js";
import { splitSpecialTokens } from "./special.js";
import { utf8ByteString, type Vocab } from "./vocab.js";

export abstract class VocabTokenizer implements Tokenizer {
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

  /**
   * Appends the tokens of one text fragment (a byte string between special tokens, never empty) to `out`.
   * `followsSpecial`: the fragment starts the text or comes right after a special token.
   */
  protected abstract encodeFragment(fragment: string, followsSpecial: boolean, out: number[]): void;

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const addSpecial = opts.addSpecial ?? true;
    const vocab = this.vocab;
    const out: number[] = [];
    if (addSpecial && vocab.addBos) out.push(vocab.bosId);
    const fragments = text.length === 0 ? [] : splitSpecialTokens(vocab, utf8ByteString(text), opts.parseSpecial ?? false);
    let followsSpecial = true; // the start of the text counts as following a special token
    for (const fragment of fragments) {
      if (typeof fragment === "number") {
        out.push(fragment);
        followsSpecial = true;
        continue;
      }
      this.encodeFragment(fragment, followsSpecial, out);
      followsSpecial = false;
    }
    if (addSpecial && vocab.addEos) out.push(vocab.eosId);
    return out;
  }

  tokenBytes(id: number, special = false): Uint8Array {
    return this.vocab.piece(id, special);
  }

  /**
   * llama.cpp's detokenize (before the clean-up a BPE pre-tokenizer may add): pieces concatenated; with add_space_prefix the first piece loses one
   * leading space, unless a BOS was removed (removeSpecial) first. A leading BOS that is kept renders as "" but still
   * uses up that one strip, so the next token keeps its space (this is what node-llama-cpp's model.detokenize returns).
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
