/**
 * A sentencepiece-style ("llama" tokenizer model) vocabulary for synthetic models:
 * <unk> <s> </s>, the 256 byte-fallback tokens <0x00>..<0xFF>, then pieces ("▁the", letters, letter pairs, ...)
 * in which every multi-character piece can be built by merging two shorter pieces, as SPM merging needs.
 */

/** sentencepiece token types as llama.cpp reads them (tokenizer.ggml.token_type). */
export const SPM_TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export const SYNTH_UNK_ID = 0;
export const SYNTH_BOS_ID = 1;
export const SYNTH_EOS_ID = 2;
/** Specials plus byte tokens. */
const FIXED_TOKENS = 3 + 256;
/** The smallest vocabulary synthVocab builds: specials, bytes and the word boundary "▁". */
export const MIN_SYNTH_VOCAB = FIXED_TOKENS + 1;

const SPACE = "\u2581";

const COMMON_WORDS = (
  "the and to a was he she it of in they her his you that with said day one little there time were for on had " +
  "big once upon play saw mom happy not very friends but so is went are be all at what named girl boy lily tim " +
  "ball tree park fun wanted loved could would can do did from have this then when up out like just see go get"
).split(" ");

const LOWER = "abcdefghijklmnopqrstuvwxyz";
const UPPER = LOWER.toUpperCase();
const DIGITS = "0123456789";
const PUNCT = ".,!?'\"-:;()";

/** Pieces in priority order (earlier = higher score); duplicates are removed by the caller. */
function* candidatePieces(): Generator<string> {
  yield SPACE;
  for (const ch of LOWER + UPPER + DIGITS + PUNCT) yield ch;
  for (const ch of LOWER + UPPER) yield SPACE + ch;
  for (const word of COMMON_WORDS) {
    // "▁t", "▁th", "▁the": each prefix merges with one more letter.
    for (let end = 2; end <= word.length; end++) yield SPACE + word.slice(0, end);
  }
  for (const a of LOWER) for (const b of LOWER) yield a + b;
  for (const a of LOWER) for (const b of LOWER) yield SPACE + a + b;
  for (const a of LOWER) for (const b of LOWER) for (const c of LOWER) yield a + b + c;
  for (const a of LOWER) for (const b of LOWER) for (const c of LOWER) yield SPACE + a + b + c;
  for (const a of LOWER) for (const b of LOWER) for (const c of LOWER) for (const d of LOWER) yield a + b + c + d;
}

export interface SynthVocab {
  tokens: string[];
  /** (vocabSize) sentencepiece log-probability-like scores: higher merges first. */
  scores: Float32Array;
  /** (vocabSize) SPM_TOKEN_TYPE values. */
  tokenTypes: Int32Array;
}

export function synthVocab(vocabSize: number): SynthVocab {
  if (!Number.isInteger(vocabSize) || vocabSize < MIN_SYNTH_VOCAB) {
    throw new RangeError(`synthVocab: vocabSize ${vocabSize} must be an integer ≥ ${MIN_SYNTH_VOCAB} (3 specials, 256 bytes, "▁")`);
  }
  const tokens: string[] = ["<unk>", "<s>", "</s>"];
  const tokenTypes = new Int32Array(vocabSize);
  const scores = new Float32Array(vocabSize);
  tokenTypes[SYNTH_UNK_ID] = SPM_TOKEN_TYPE.UNKNOWN;
  tokenTypes[SYNTH_BOS_ID] = SPM_TOKEN_TYPE.CONTROL;
  tokenTypes[SYNTH_EOS_ID] = SPM_TOKEN_TYPE.CONTROL;
  for (let b = 0; b < 256; b++) {
    tokenTypes[tokens.length] = SPM_TOKEN_TYPE.BYTE;
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  }
  const seen = new Set(tokens);
  for (const piece of candidatePieces()) {
    if (tokens.length === vocabSize) break;
    if (seen.has(piece)) continue;
    seen.add(piece);
    const id = tokens.length;
    tokenTypes[id] = SPM_TOKEN_TYPE.NORMAL;
    scores[id] = -(id - FIXED_TOKENS);
    tokens.push(piece);
  }
  if (tokens.length !== vocabSize) throw new RangeError(`synthVocab: at most ${tokens.length} tokens can be generated, asked for ${vocabSize}`);
  return { tokens, scores, tokenTypes };
}
