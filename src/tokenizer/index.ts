/**
 * Tokenizers from GGUF metadata: the public Tokenizer contract, the choice of algorithm by `tokenizer.ggml.model`,
 * and a streaming decoder for generation.
 */
import type { GgufFile } from "../gguf/types.js";
import { Vocab, TokenizerError, vocabSpecFromMetadata } from "./vocab.js";
import { SpmTokenizer } from "./spm.js";
import { BpeTokenizer } from "./bpe.js";

export { Vocab, TokenizerError, TokenType, vocabSpecFromMetadata } from "./vocab.js";
export type { VocabSpec, TokenizerErrorCode } from "./vocab.js";
export { SpmTokenizer } from "./spm.js";
export { BpeTokenizer } from "./bpe.js";
export { SUPPORTED_PRE_TOKENIZERS, findPreTokenizer, preTokenize } from "./pretokenize.js";
export type { PreTokenizer, SplitterName } from "./pretokenize.js";

export interface EncodeOptions {
  /** Add BOS / EOS as the metadata says (tokenizer.ggml.add_bos_token / add_eos_token). Default true. */
  addSpecial?: boolean;
  /** Turn control-token texts in the input ("<s>") into their ids. Default false (node-llama-cpp's model.tokenize). */
  parseSpecial?: boolean;
}

export interface DecodeOptions {
  /** Drop a leading BOS and a trailing EOS when the model adds them (llama.cpp's remove_special). Default false. */
  removeSpecial?: boolean;
  /** Render control and unknown tokens as their text (llama.cpp's unparse_special). Default false: they give "". */
  renderSpecial?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  /** -1 when the vocabulary has none. */
  readonly bosId: number;
  /** -1 when the vocabulary has none. */
  readonly eosId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  encode(text: string, opts?: EncodeOptions): number[];
  /** Bytes of one token's piece (byte-fallback tokens give their byte; "▁" becomes a space; control tokens give
   * nothing unless `special`). */
  tokenBytes(id: number, special?: boolean): Uint8Array;
  /** Decode ids to text (UTF-8 across token boundaries), like llama.cpp's detokenize. */
  decode(ids: readonly number[], opts?: DecodeOptions): string;
  isEog(id: number): boolean;
}

/** Tokenizer models this project implements (values of tokenizer.ggml.model). */
export const SUPPORTED_TOKENIZER_MODELS: readonly string[] = ["llama", "gpt2"];

/** Builds a tokenizer from a vocabulary, choosing the algorithm by its model name. */
export function tokenizerFromVocab(vocab: Vocab): Tokenizer {
  if (vocab.model === "llama") return new SpmTokenizer(vocab);
  if (vocab.model === "gpt2") return new BpeTokenizer(vocab);
  throw new TokenizerError(
    "unsupported_model",
    `tokenizer.ggml.model is ${JSON.stringify(vocab.model)}; supported: ${SUPPORTED_TOKENIZER_MODELS.map((m) => JSON.stringify(m)).join(", ")}`,
  );
}

/** The tokenizer a GGUF file describes. Throws TokenizerError for unsupported models and bad vocabularies. */
export function tokenizerFromGguf(file: GgufFile): Tokenizer {
  const spec = vocabSpecFromMetadata(file.metadata);
  if (!SUPPORTED_TOKENIZER_MODELS.includes(spec.model)) {
    throw new TokenizerError(
      "unsupported_model",
      `${file.name}: tokenizer.ggml.model is ${JSON.stringify(spec.model)}; supported: ${SUPPORTED_TOKENIZER_MODELS.map((m) => JSON.stringify(m)).join(", ")}`,
    );
  }
  return tokenizerFromVocab(new Vocab(spec));
}

/**
 * Streaming detokenizer for generation: push ids one at a time, get back the text of the complete UTF-8 characters
 * so far (bytes of a character split across tokens wait for the rest). The concatenation of every push and the
 * final flush equals decoding all bytes at once.
 */
export class TokenTextDecoder {
  private readonly utf8 = new TextDecoder("utf-8", { ignoreBOM: true });
  private stripSpace: boolean;
  private readonly renderSpecial: boolean;

  constructor(
    private readonly tokenizer: Tokenizer,
    /** Drop one leading space of the first piece (as detokenizing a text from its start does). Default false. */
    opts: { stripLeadingSpace?: boolean; renderSpecial?: boolean } = {},
  ) {
    this.stripSpace = opts.stripLeadingSpace ?? false;
    this.renderSpecial = opts.renderSpecial ?? false;
  }

  push(id: number): string {
    let bytes = this.tokenizer.tokenBytes(id, this.renderSpecial);
    if (this.stripSpace && bytes.length > 0 && bytes[0] === 0x20) bytes = bytes.subarray(1);
    this.stripSpace = false;
    return this.utf8.decode(bytes, { stream: true });
  }

  /** Text of any bytes still waiting (an incomplete character becomes U+FFFD); the decoder can then be reused. */
  flush(): string {
    return this.utf8.decode();
  }
}
