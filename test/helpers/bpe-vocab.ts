/**
 * Synthetic byte-level BPE vocabularies for tests: a small BPE trainer (most frequent adjacent pair first) over
 * words of a training text, the 256 GPT-2 byte characters, whole-word tokens that no merge reaches (for Llama 3's
 * ignore_merges), special tokens of every kind, and the `tokenizer.*` GGUF metadata block llama.cpp reads.
 */
import { GgufValueType } from "../../src/gguf/types.js";
import type { GgufMetadataSpec } from "../../src/gguf/writer.js";
import { BYTE_TO_CODE_POINT } from "../../src/tokenizer/byte-level.js";
import { TokenType } from "../../src/tokenizer/vocab.js";

/** Text in GPT-2 byte characters (a JS string, one char per UTF-8 byte). */
export function byteLevel(text: string): string {
  let out = "";
  for (const b of new TextEncoder().encode(text)) out += String.fromCharCode(BYTE_TO_CODE_POINT[b]!);
  return out;
}

/** Training words: a GPT-2-like split (independent of src/tokenizer) of each text, counted. */
export function trainingWords(texts: readonly string[]): Map<string, number> {
  const split = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+/gu;
  const counts = new Map<string, number>();
  for (const text of texts) {
    for (const m of text.matchAll(split)) {
      const w = byteLevel(m[0]);
      counts.set(w, (counts.get(w) ?? 0) + 1);
    }
  }
  return counts;
}

/**
 * Learns up to nMerges merges from counted words (byte-level strings): each step merges the most frequent adjacent
 * pair (ties: the smaller pair key), updating only the words that hold it. Returns [left, right] pairs in order.
 */
export function trainBpe(wordCounts: Map<string, number>, nMerges: number): [string, string][] {
  const SEP = "\u0000"; // not a byte character
  const words = [...wordCounts].map(([w, freq]) => ({ syms: [...w], freq }));
  const pairCount = new Map<string, number>();
  const pairWords = new Map<string, Set<number>>();
  const addPairs = (wi: number, sign: number): void => {
    const { syms, freq } = words[wi]!;
    for (let i = 0; i + 1 < syms.length; i++) {
      const key = syms[i] + SEP + syms[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + sign * freq);
      if (sign > 0) {
        let set = pairWords.get(key);
        if (!set) pairWords.set(key, (set = new Set()));
        set.add(wi);
      }
    }
  };
  words.forEach((_, wi) => addPairs(wi, 1));
  const merges: [string, string][] = [];
  while (merges.length < nMerges) {
    let best = "";
    let bestCount = 1;
    for (const [key, count] of pairCount) {
      if (count > bestCount || (count === bestCount && count > 1 && key < best)) {
        best = key;
        bestCount = count;
      }
    }
    if (best === "") break;
    const [left, right] = best.split(SEP) as [string, string];
    merges.push([left, right]);
    for (const wi of pairWords.get(best) ?? []) {
      addPairs(wi, -1);
      const syms = words[wi]!.syms;
      const merged: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === left && syms[i + 1] === right) {
          merged.push(left + right);
          i++;
        } else {
          merged.push(syms[i]!);
        }
      }
      words[wi]!.syms = merged;
      addPairs(wi, 1);
    }
    pairCount.delete(best);
    pairWords.delete(best);
  }
  return merges;
}

export interface BpeVocab {
  tokens: string[];
  /** (nTokens) token types. */
  types: Int32Array;
  /** "left right" lines. */
  merges: string[];
  /** Token text → id. */
  id: (text: string) => number;
}

/** Special tokens added after the learned ones: [text, type]. */
export const SPECIAL_TOKENS: readonly [string, number][] = [
  ["<|begin_of_text|>", TokenType.CONTROL],
  ["<|end_of_text|>", TokenType.CONTROL],
  ["<|endoftext|>", TokenType.CONTROL],
  ["<|eot_id|>", TokenType.CONTROL],
  ["<|im_start|>", TokenType.CONTROL],
  ["<|fim_prefix|>", TokenType.USER_DEFINED], // llama.cpp makes FIM tokens control tokens
  ["<tool_call>", TokenType.USER_DEFINED], // always split out, even without parseSpecial
  ["<|channel|>", TokenType.CONTROL], // llama.cpp makes this gpt-oss token user-defined
  ["<0x0A>", TokenType.BYTE],
  ["a b", TokenType.NORMAL], // a raw space is no byte character: decodes as [UNK_BYTE_...]
  ["[UNUSED_TOKEN]", TokenType.UNUSED],
  // llama.cpp's Phi-3 rule (by general.name) looks these up and fails to load a vocabulary without them.
  ["<s>", TokenType.CONTROL],
  ["</s>", TokenType.CONTROL],
  ["<unk>", TokenType.UNKNOWN],
];

/**
 * Whole words added as tokens without merges that build them (only Llama 3's ignore_merges finds them): keep them
 * out of training texts. " Once" is also reachable by merges.
 */
export const WHOLE_WORDS: readonly string[] = [" zyzzyvas", "qwxqwx", " 𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "%%%", " Once"];

/** Strings holding WHOLE_WORDS (test them, but do not train on them). */
export const WHOLE_WORD_PROBES: readonly string[] = [" zyzzyvas qwxqwx 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 %%% Once", "qwxqwx zyzzyvas", "%%%%%% 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"];

/** A byte-level BPE vocabulary: 256 byte characters, merged tokens, whole words, then SPECIAL_TOKENS. */
export function buildBpeVocab(trainTexts: readonly string[], nMerges: number): BpeVocab {
  const tokens: string[] = BYTE_TO_CODE_POINT.map((cp) => String.fromCharCode(cp));
  const types: number[] = tokens.map(() => TokenType.NORMAL);
  const seen = new Set(tokens);
  const merges: string[] = [];
  for (const [left, right] of trainBpe(trainingWords(trainTexts), nMerges)) {
    merges.push(`${left} ${right}`);
    if (!seen.has(left + right)) {
      seen.add(left + right);
      tokens.push(left + right);
      types.push(TokenType.NORMAL);
    }
  }
  for (const w of WHOLE_WORDS) {
    const t = byteLevel(w);
    if (seen.has(t)) continue;
    seen.add(t);
    tokens.push(t);
    types.push(TokenType.NORMAL);
  }
  for (const [text, type] of SPECIAL_TOKENS) {
    tokens.push(text);
    types.push(type);
  }
  const index = new Map(tokens.map((t, i) => [t, i]));
  const id = (text: string): number => {
    const i = index.get(text);
    if (i === undefined) throw new Error(`bpe vocab: no token ${JSON.stringify(text)}`);
    return i;
  };
  return { tokens, types: Int32Array.from(types), merges, id };
}

export interface BpeMetadataOptions {
  /** tokenizer.ggml.pre; undefined leaves the key out. */
  pre?: string;
  bos?: string;
  eos?: string;
  addBos?: boolean;
  addEos?: boolean;
}

/** The `tokenizer.*` metadata block of a GGUF file for this vocabulary. */
export function bpeMetadata(vocab: BpeVocab, opts: BpeMetadataOptions): GgufMetadataSpec[] {
  const { STRING, ARRAY, INT32, UINT32, BOOL } = GgufValueType;
  const m: GgufMetadataSpec[] = [
    { key: "tokenizer.ggml.model", type: STRING, value: "gpt2" },
    { key: "tokenizer.ggml.tokens", type: ARRAY, itemType: STRING, value: vocab.tokens },
    { key: "tokenizer.ggml.token_type", type: ARRAY, itemType: INT32, value: vocab.types },
    { key: "tokenizer.ggml.merges", type: ARRAY, itemType: STRING, value: vocab.merges },
  ];
  if (opts.pre !== undefined) m.push({ key: "tokenizer.ggml.pre", type: STRING, value: opts.pre });
  if (opts.bos !== undefined) m.push({ key: "tokenizer.ggml.bos_token_id", type: UINT32, value: vocab.id(opts.bos) });
  if (opts.eos !== undefined) m.push({ key: "tokenizer.ggml.eos_token_id", type: UINT32, value: vocab.id(opts.eos) });
  if (opts.addBos !== undefined) m.push({ key: "tokenizer.ggml.add_bos_token", type: BOOL, value: opts.addBos });
  if (opts.addEos !== undefined) m.push({ key: "tokenizer.ggml.add_eos_token", type: BOOL, value: opts.addEos });
  return m;
}

/** Strings that stress pre-tokenizers, merges, special tokens and decoding. */
export const BPE_HARD_STRINGS: readonly string[] = [
  " ", "  ", "   ", "\n", "\n\n", "\n\n\n", " \n", "\n ", " \n \n", "\t", "\t\t x", "\r\n", "a\r\nb", "x \r\n\r\n y",
  "Hello world", "Hello  world", "  leading spaces", "trailing spaces   ", "multiple   spaces   inside",
  "line one\nline two\r\nline three\n\n\nfour", "tab\tseparated\tvalues", "\t\t indented\n\t",
  "Once upon a time, there was a little girl named Lily.", "supercalifragilistic xylophone!!! Once",
  "😀", "emoji 🎉🚀👍🏽 in text", "👨‍👩‍👧 family", "日本語のテキストです。", " 日本語", "中文测试：你好，世界！", "한국어 텍스트",
  "Ελληνικά και кириллица", "café naïve résumé ñ ü", "ﬁ ligature Ⅻ roman ½ ² superscript", "x\u1C89y z\u0897w new letters",
  "0", "42", "123", "1234", "12345", "1234567890", "3.14159265358979", "31415926535897932384626433832795028841971",
  "1,000,000 and 1.000.000", "a1b22c333d4444", " 1 22 333 4444", "٣٤٥ arabic digits ۱۲۳", "x²³ ½",
  "don't won't can't I'm you're they've we'll she'd it's", "DON'T WON'T I'M YOU'RE THEY'VE WE'LL SHE'D IT'S",
  "'s 't 're 've 'm 'll 'd", "'S'T'RE'VE'M'LL'D", "rock'n'roll '' ' 'x", "it 's a test , isn 't it ? yes ! no .",
  "\"quoted\" 'single' “curly” ‘also’ — – …", "She said, â€œHi!â€ and it was Tomâ€™s.",
  "def f(x):\n    return x ** 2  # square\n", "if (a && b) { c[0] = d->e; } // C", "<html><body class=\"x\">&amp;</body></html>",
  "    four spaces\n        eight", "a\u00a0b\u2003c\u3000d", "x \ufeff y \ufeff\ufeff z", "line\u0085next x \u0085 y", "a \u1680 b\u180e c", "a\u0085\u0085b c\ufeff\ufeffd", "\u200bzero width", "\ufeffBOM first", "mixed\u0000nul",
  "a\u0301 combining e\u0308", "~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./", "$100 +5 <=> ^~|", "x".repeat(300), " ".repeat(40) + "end",
  "<|begin_of_text|>Hello<|end_of_text|>", "<|endoftext|> after", "before <|eot_id|>", "<|im_start|>user\nhi<|eot_id|>",
  "a <tool_call> b<tool_call>c", "<|fim_prefix|>def", "<|channel|>analysis", "<|begin_of_text|><|begin_of_text|>",
  "partial <|end_of_text| and <|eot_id", "<0x0A> text", "a b", "[UNUSED_TOKEN]", "<s> x </s>  y<unk>\n z",
  "<|eot_id|>  \n two spaces after", " \t<tool_call>\t ",
];
