/**
 * BPE pre-tokenizers: how llama.cpp cuts text into words before merging, chosen by `tokenizer.ggml.pre`.
 *
 * llama.cpp (src/llama-vocab.cpp, src/unicode.cpp) names a list of regexes per pre-tokenizer. The GPT-2, Llama 3 and
 * Qwen2 regexes run as hand-written scanners there, not as regexes, and those scanners differ from the regexes in
 * places (e.g. where a run of spaces ends); the splitters below follow the scanners step by step. The "default" list
 * mixes std::regex passes (run on a "collapsed" text: one char per code point, non-ASCII code points replaced by a
 * category marker) with the GPT-2 scanner; it is reproduced the same way with JS regexes on the same collapsed text.
 *
 * Character classes come from llama.cpp's Unicode tables: \p{L}, \p{N}, ... as JS regexes know them, except for code
 * points those tables predate (LLAMA_UNASSIGNED_RANGES, treated as unassigned), and its own 25-code-point whitespace
 * set (not JS's \s). Word boundaries are counted in code points.
 */
import { LLAMA_UNASSIGNED_RANGES } from "./unicode-newer.js";

/** llama.cpp's unicode_cpt_flags bits. */
export const CodePointFlag = {
  UNDEFINED: 0x0001,
  NUMBER: 0x0002,
  LETTER: 0x0004,
  SEPARATOR: 0x0008,
  MARK: 0x0010,
  PUNCTUATION: 0x0020,
  SYMBOL: 0x0040,
  CONTROL: 0x0080,
  WHITESPACE: 0x0100,
} as const;
const F = CodePointFlag;

/** llama.cpp's whitespace set (unicode_set_whitespace). */
const WHITESPACE = new Set([
  0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x20, 0x85, 0xa0, 0x1680, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006,
  0x2007, 0x2008, 0x2009, 0x200a, 0x2028, 0x2029, 0x202f, 0x205f, 0x3000,
]);

/** General categories in the order they are tested; Cn before C, since JS's \p{C} includes unassigned code points. */
const CATEGORY_TESTS: readonly [number, RegExp][] = [
  [F.UNDEFINED, /^\p{Cn}$/u],
  [F.NUMBER, /^\p{N}$/u],
  [F.LETTER, /^\p{L}$/u],
  [F.SEPARATOR, /^\p{Z}$/u],
  [F.MARK, /^\p{M}$/u],
  [F.PUNCTUATION, /^\p{P}$/u],
  [F.SYMBOL, /^\p{S}$/u],
];

function unassignedInLlama(cp: number): boolean {
  const r = LLAMA_UNASSIGNED_RANGES;
  let lo = 0, hi = r.length / 2 - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (cp < r[2 * mid]!) hi = mid - 1;
    else if (cp > r[2 * mid + 1]!) lo = mid + 1;
    else return true;
  }
  return false;
}

function classify(cp: number): number {
  const ws = WHITESPACE.has(cp) ? F.WHITESPACE : 0;
  if (cp >= 0xd800 && cp <= 0xdfff) return F.CONTROL | ws; // surrogates are Cs
  if (unassignedInLlama(cp)) return F.UNDEFINED | ws;
  const s = String.fromCodePoint(cp);
  for (const [flag, re] of CATEGORY_TESTS) if (re.test(s)) return flag | ws;
  return F.CONTROL | ws;
}

const ASCII_FLAGS = Uint16Array.from({ length: 128 }, (_, cp) => classify(cp)); // (128)
const flagCache = new Map<number, number>();

/** llama.cpp's flags of one code point (category bit, plus WHITESPACE). Never 0 for a code point. */
export function codePointFlags(cp: number): number {
  if (cp < 128) return ASCII_FLAGS[cp]!;
  let f = flagCache.get(cp);
  if (f === undefined) {
    f = classify(cp);
    flagCache.set(cp, f);
  }
  return f;
}

// ---------------------------------------------------------------------------------------------------------------
// The pre-tokenizers

export type SplitterName = "gpt2" | "llama3" | "qwen2" | "default";

export interface PreTokenizer {
  /** The `tokenizer.ggml.pre` value. */
  name: string;
  splitter: SplitterName;
  /** Detokenize removes spaces before , . ! ? and some apostrophes (llama.cpp's clean_spaces). */
  cleanSpaces: boolean;
  /** A word that is a token as a whole skips merging. */
  ignoreMerges: boolean;
  /** add_bos when tokenizer.ggml.add_bos_token is absent. */
  addBos: boolean;
  /** The BOS id llama.cpp assumes when tokenizer.ggml.bos_token_id is absent (-1: none). */
  defaultBosId: number;
}

type Settings = Omit<PreTokenizer, "name">;
const settings = (splitter: SplitterName, cleanSpaces: boolean, extra: Partial<Settings> = {}): Settings =>
  ({ splitter, cleanSpaces, ignoreMerges: false, addBos: false, defaultBosId: 11, ...extra });

/** Names llama.cpp maps to one of the four splitters, with the flags it sets for each (src/llama-vocab.cpp). */
const PRE_TOKENIZERS: Readonly<Record<string, Settings>> = (() => {
  const table: Record<string, Settings> = {};
  const add = (names: string[], s: Settings): void => { for (const n of names) table[n] = s; };
  add(["default"], settings("default", true));
  add(["llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"],
    settings("llama3", true, { ignoreMerges: true, addBos: true }));
  add(["dbrx", "smaug-bpe"], settings("llama3", true));
  add(["glm4", "chatglm-bpe"], settings("llama3", true, { defaultBosId: -1 }));
  add(["qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "hunyuan", "solar-open"], settings("qwen2", false));
  add(["stablelm2", "megrez"], settings("qwen2", true));
  add(["gpt-2", "phi-2", "gigachat", "a.x-4.0", "mellum", "mpt", "olmo", "jais", "exaone4"], settings("gpt2", true));
  add(["trillion", "granite-docling"], settings("gpt2", false));
  return table;
})();

export const SUPPORTED_PRE_TOKENIZERS: readonly string[] = Object.keys(PRE_TOKENIZERS);

/** The pre-tokenizer llama.cpp uses for a `tokenizer.ggml.pre` value ("" or absent: "default"), or undefined. */
export function findPreTokenizer(name: string | undefined): PreTokenizer | undefined {
  const key = name === undefined || name === "" ? "default" : name;
  const s = Object.prototype.hasOwnProperty.call(PRE_TOKENIZERS, key) ? PRE_TOKENIZERS[key] : undefined;
  return s ? { name: key, ...s } : undefined;
}

/** Word lengths (in code points, summing to cpts.length) of the text, as llama.cpp's unicode_regex_split cuts it. */
export function preTokenize(splitter: SplitterName, cpts: readonly number[]): number[] {
  if (cpts.length === 0) return [];
  const whole = [cpts.length];
  switch (splitter) {
    case "gpt2": return splitGpt2(cpts, whole);
    case "llama3": return splitLlama3(cpts, whole, 3);
    case "qwen2": return splitLlama3(cpts, whole, 1);
    case "default": return splitDefault(cpts);
  }
}

const APOSTROPHE = 0x27, SPACE = 0x20, CR = 0x0d, LF = 0x0a;
const OUT_OF_RANGE = -1;
const NOT_WS_L_N = F.WHITESPACE | F.LETTER | F.NUMBER;
const asciiLower = (cp: number): number => (cp >= 0x41 && cp <= 0x5a ? cp + 32 : cp);

/** A scanner over one chunk [ini, end) of the text: flags and code points outside the chunk read as 0 / -1. */
class Chunk {
  prevEnd: number;
  constructor(
    readonly cpts: readonly number[],
    readonly ini: number,
    readonly end: number,
    readonly out: number[],
  ) {
    this.prevEnd = ini;
  }
  cpt(pos: number): number {
    return pos >= this.ini && pos < this.end ? this.cpts[pos]! : OUT_OF_RANGE;
  }
  flags(pos: number): number {
    return pos >= this.ini && pos < this.end ? codePointFlags(this.cpts[pos]!) : 0;
  }
  /** Ends the current word at `end`; returns its length. */
  cut(end: number): number {
    const len = end - this.prevEnd;
    if (len > 0) this.out.push(len);
    this.prevEnd = end;
    return len;
  }
  /** 's 't 'm 'd (2) or 're 've 'll (3) at pos, or 0; `lower` folds case (Llama 3 and Qwen2) or not (GPT-2). */
  contraction(pos: number, lower: (cp: number) => number): number {
    if (this.cpt(pos) !== APOSTROPHE || pos + 1 >= this.end) return 0;
    const a = lower(this.cpt(pos + 1));
    if (a === 0x73 || a === 0x74 || a === 0x6d || a === 0x64) return 2; // s t m d
    if (pos + 2 >= this.end) return 0;
    const b = lower(this.cpt(pos + 2));
    if ((a === 0x72 && b === 0x65) || (a === 0x76 && b === 0x65) || (a === 0x6c && b === 0x6c)) return 3; // re ve ll
    return 0;
  }
  /** Length of the whitespace run at pos. */
  whitespaceRun(pos: number): number {
    let n = 0;
    while (this.flags(pos + n) & F.WHITESPACE) n++;
    return n;
  }
}

/** Runs `scan` over every chunk of `offsets` (lengths), collecting the new word lengths. */
function forEachChunk(cpts: readonly number[], offsets: readonly number[], scan: (c: Chunk) => void): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    scan(new Chunk(cpts, start, start + len, out));
    start += len;
  }
  return out;
}

/** GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ as llama.cpp scans it. */
function splitGpt2(cpts: readonly number[], offsets: readonly number[]): number[] {
  return forEachChunk(cpts, offsets, (c) => {
    for (let pos = c.ini; pos < c.end; ) {
      const cp = c.cpt(pos);
      const contraction = c.contraction(pos, (x) => x);
      if (contraction > 0) { pos += c.cut(pos + contraction); continue; }
      const space = cp === SPACE ? 1 : 0;
      let f = space ? c.flags(pos + 1) : c.flags(pos);
      if (f & F.LETTER) { // ' ?\p{L}+'
        pos += space;
        while (f & F.LETTER) f = c.flags(++pos);
        c.cut(pos);
        continue;
      }
      if (f & F.NUMBER) { // ' ?\p{N}+'
        pos += space;
        while (f & F.NUMBER) f = c.flags(++pos);
        c.cut(pos);
        continue;
      }
      if (!(f & NOT_WS_L_N) && f !== 0) { // ' ?[^\s\p{L}\p{N}]+'
        pos += space;
        while (!(f & NOT_WS_L_N) && f !== 0) f = c.flags(++pos);
        c.cut(pos);
        continue;
      }
      pos = whitespaceTail(c, pos, c.whitespaceRun(pos));
    }
  });
}

/** '\s+(?!\S)|\s+' and the one-code-point fallback, shared by the scanners; returns the new position. */
function whitespaceTail(c: Chunk, pos: number, nWhitespace: number): number {
  if (nWhitespace > 1 && c.cpt(pos + nWhitespace) !== OUT_OF_RANGE) {
    pos += nWhitespace - 1; // leave the last space to start the next word
  } else if (nWhitespace > 0) {
    pos += nWhitespace;
  } else {
    pos += 1; // no rule matched: one code point alone
  }
  c.cut(pos);
  return pos;
}

/**
 * Llama 3 (maxDigits 3): (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|
 * \s*[\r\n]+|\s+(?!\S)|\s+ as llama.cpp scans it. Qwen2 (maxDigits 1) is the same with \p{N} alone.
 */
function splitLlama3(cpts: readonly number[], offsets: readonly number[], maxDigits: number): number[] {
  return forEachChunk(cpts, offsets, (c) => {
    for (let pos = c.ini; pos < c.end; ) {
      const cp = c.cpt(pos);
      const flags = c.flags(pos);
      const contraction = c.contraction(pos, asciiLower);
      if (contraction > 0) { pos += c.cut(pos + contraction); continue; }
      // '[^\r\n\p{L}\p{N}]?\p{L}+'
      if (!(cp === CR || cp === LF || flags & F.NUMBER) && (flags & F.LETTER || c.flags(pos + 1) & F.LETTER)) {
        pos++;
        while (c.flags(pos) & F.LETTER) pos++;
        c.cut(pos);
        continue;
      }
      if (flags & F.NUMBER) { // '\p{N}{1,3}' repeated: a run of digits in groups of maxDigits from the left
        let groupStart = pos;
        while (c.flags(pos) & F.NUMBER) {
          if (++pos - groupStart >= maxDigits) {
            c.cut(pos);
            groupStart = pos;
          }
        }
        c.cut(pos);
        continue;
      }
      // ' ?[^\s\p{L}\p{N}]+[\r\n]*' (the "is a code point" test reads the first code point's flags, as llama.cpp does)
      let f2 = cp === SPACE ? c.flags(pos + 1) : flags;
      if (!(f2 & NOT_WS_L_N) && flags !== 0) {
        if (cp === SPACE) pos++;
        while (!(f2 & NOT_WS_L_N) && f2 !== 0) f2 = c.flags(++pos);
        let next = c.cpt(pos);
        while (next === CR || next === LF) next = c.cpt(++pos);
        c.cut(pos);
        continue;
      }
      // '\s*[\r\n]+': up to the last \r or \n of the whitespace run
      let nWhitespace = 0;
      let afterLastNewline = 0;
      while (c.flags(pos + nWhitespace) & F.WHITESPACE) {
        const w = c.cpt(pos + nWhitespace);
        if (w === CR || w === LF) afterLastNewline = pos + nWhitespace + 1;
        nWhitespace++;
      }
      if (afterLastNewline > 0) {
        pos = afterLastNewline;
        c.cut(pos);
        continue;
      }
      pos = whitespaceTail(c, pos, nWhitespace);
    }
  });
}

// ---------------------------------------------------------------------------------------------------------------
// "default": [\p{P}\$\+<=>\^~\|]+ , the GPT-2 scanner, \p{N}+ , [0-9][0-9][0-9] in turn, each within the last's words

/** Markers llama.cpp puts in the collapsed text for non-ASCII code points (k_ucat_cpt), and for whitespace. */
function collapsedChar(cp: number): number {
  if (cp < 128) return cp;
  const f = codePointFlags(cp);
  if (f & F.WHITESPACE) return 0x0b;
  if (f & F.NUMBER) return 0xd1;
  if (f & F.LETTER) return 0xd2;
  if (f & F.PUNCTUATION) return 0xd3;
  if (f & F.MARK) return 0xd4;
  if (f & F.SYMBOL) return 0xd5;
  return 0xd0;
}

/** The default list's regexes as llama.cpp rewrites them for the collapsed text (\p{P} → [\xD3 + ASCII punctuation]). */
const DEFAULT_PUNCT_RUN = /[\u00D3!-#%-*,-/:-;?-@\[-\]_\{\}\$\+<=>\^~\|]+/g;
const DEFAULT_NUMBER_RUN = /[\u00D10-9]+/g;
const THREE_DIGITS = /[0-9][0-9][0-9]/g;

/** std::regex_iterator over each chunk: matches and the gaps between them become words. */
function splitRegex(collapsed: string, offsets: readonly number[], re: RegExp): number[] {
  const out: number[] = [];
  let start = 0;
  for (const len of offsets) {
    const chunk = collapsed.slice(start, start + len);
    let last = 0;
    re.lastIndex = 0;
    for (let m = re.exec(chunk); m !== null; m = re.exec(chunk)) {
      if (m.index > last) out.push(m.index - last);
      out.push(m[0].length);
      last = m.index + m[0].length;
    }
    if (last < len) out.push(len - last);
    start += len;
  }
  return out;
}

function splitDefault(cpts: readonly number[]): number[] {
  let collapsed = "";
  for (const cp of cpts) collapsed += String.fromCharCode(collapsedChar(cp));
  let offsets = splitRegex(collapsed, [cpts.length], DEFAULT_PUNCT_RUN);
  offsets = splitGpt2(cpts, offsets);
  offsets = splitRegex(collapsed, offsets, DEFAULT_NUMBER_RUN);
  return splitRegex(collapsed, offsets, THREE_DIGITS);
}
