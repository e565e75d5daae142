/**
 * A tokenizer vocabulary as llama.cpp loads it from GGUF metadata (`tokenizer.ggml.*`): token texts, scores, token
 * types, special ids, BOS/EOS and space-prefix flags, the end-of-generation set and each token's decoded piece.
 *
 * Token texts are held as "byte strings": one JS char per UTF-8 byte (code units 0..255). Tokenizers work on the
 * input's UTF-8 bytes in the same form, so every lookup compares bytes exactly as llama.cpp's std::string maps do.
 */
import type { GgufValue } from "../gguf/types.js";
import { byteLevelDecode } from "./byte-level.js";
import { findPreTokenizer, SUPPORTED_PRE_TOKENIZERS, type PreTokenizer } from "./pretokenize.js";

/** Token types as stored in `tokenizer.ggml.token_type` (llama_token_type). */
export const TokenType = {
  UNDEFINED: 0,
  NORMAL: 1,
  UNKNOWN: 2,
  CONTROL: 3,
  USER_DEFINED: 4,
  UNUSED: 5,
  BYTE: 6,
} as const;
export type TokenType = (typeof TokenType)[keyof typeof TokenType];

export type TokenizerErrorCode = "unsupported_model" | "unsupported_pre_tokenizer" | "bad_vocab" | "no_byte_token" | "bad_token_id";

/** Every tokenizer failure: a bad or unsupported vocabulary, a byte with no token, an id outside the vocabulary. */
export class TokenizerError extends Error {
  constructor(
    readonly code: TokenizerErrorCode,
    message: string,
  ) {
    super(message);
    this.name = "TokenizerError";
  }
}

/** Everything a vocabulary is built from (what the GGUF keys hold, already typed). */
export interface VocabSpec {
  /** `tokenizer.ggml.model`, e.g. "llama". */
  model: string;
  tokens: readonly string[];
  scores?: ArrayLike<number>;
  tokenTypes?: ArrayLike<number>;
  bosId?: number;
  eosId?: number;
  unkId?: number;
  eotId?: number;
  eomId?: number;
  addBos?: boolean;
  addEos?: boolean;
  addSpacePrefix?: boolean;
  /** `tokenizer.ggml.pre` (BPE only; absent means "default"). */
  pre?: string;
  /** `tokenizer.ggml.merges` (BPE): "left right" per line, highest priority first. */
  merges?: readonly string[];
  /** `general.name`: llama.cpp gives special tokens of Phi-3 models the rstrip attribute by name. */
  modelName?: string;
  /** FIM token ids from metadata (tokenizer.ggml.fim_*_token_id); kinds without one are found by text. */
  fimIds?: Partial<Record<FimKind, number>>;
}

export type FimKind = "pre" | "suf" | "mid" | "pad" | "rep" | "sep";

/** Token texts llama.cpp takes as FIM tokens when metadata names none (they become control tokens). */
const FIM_TEXTS: Record<FimKind, readonly string[]> = {
  pre: ["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<\uFF5Cfim\u2581begin\uFF5C>", "<PRE>", "\u2581<PRE>", "<|code_prefix|>", "<|prefix|>"],
  suf: ["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<\uFF5Cfim\u2581hole\uFF5C>", "<SUF>", "\u2581<SUF>", "<|code_suffix|>", "<|suffix|>"],
  mid: ["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<\uFF5Cfim\u2581end\uFF5C>", "<MID>", "\u2581<MID>", "<|code_middle|>", "<|middle|>"],
  pad: ["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
  rep: ["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
  sep: ["<|file_sep|>"],
};

/** Attribute bits of special tokens: llama.cpp strips whitespace beside them when splitting them out of text. */
export const StripFlag = { LSTRIP: 1, RSTRIP: 2 } as const;

/** Token texts that end generation (llama.cpp matches EOG tokens by text; these also become control tokens). */
const EOG_TEXTS: readonly string[] = [
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<|flush|>", "<|calls|>", "<end_of_turn>",
  "<|endoftext|>", "</s>", "<|eom_id|>", "<EOT>", "_<EOT>", "[EOT]", "[EOS]", "<|end_of_text|>", "<end_of_utterance>",
  "<eos>", "<turn|>", "<|tool_response>", "<\uFF5Cend\u2581of\u2581sentence\uFF5C>", "[e~[",
];
/** gpt-oss tokens llama.cpp always renders (it makes them user-defined). */
const ALWAYS_RENDERED_TEXTS: readonly string[] = ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"];

/** Defaults a tokenizer model gives when metadata is silent (llama.cpp's llama_vocab::impl::load). */
interface ModelDefaults {
  bosId: number;
  eosId: number;
  unkId: number;
  addBos: boolean;
  addSpacePrefix: boolean;
}

/** UTF-8 bytes of a JS string as a byte string (one char per byte). */
export function utf8ByteString(text: string): string {
  const bytes = new TextEncoder().encode(text);
  let out = "";
  const CHUNK = 8192;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode.apply(null, bytes.subarray(i, i + CHUNK) as unknown as number[]);
  }
  return out;
}

function byteStringToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length); // (nBytes)
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export const ESCAPED_SPACE = "\xE2\x96\x81"; // "▁" (U+2581) as UTF-8 bytes (a byte string)

/** Value of up to two leading hex digits, stopping at the first non-hex char (as strtol would on "HH"). */
function parseHexPrefix(s: string): number {
  let value = 0;
  for (let i = 0; i < Math.min(2, s.length); i++) {
    const d = parseInt(s[i]!, 16);
    if (Number.isNaN(d)) break;
    value = value * 16 + d;
  }
  return value;
}

export class Vocab {
  readonly model: string;
  readonly size: number;
  /** Token texts as byte strings. */
  readonly texts: readonly string[];
  /** (size) merge scores. */
  readonly scores: Float32Array;
  /** (size) token types (TokenType values; anything else is treated as undefined). */
  readonly types: Uint8Array;
  /** Byte-string text → id. */
  readonly idByText: Map<string, number>;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  readonly addSpacePrefix: boolean;
  /** BPE only: the pre-tokenizer `tokenizer.ggml.pre` names. */
  readonly preTokenizer: PreTokenizer | undefined;
  /** BPE only: merge ranks, keyed mergeKey(left, right) (byte strings); the first line of a repeated pair wins. */
  readonly mergeRanks: ReadonlyMap<string, number>;
  /** (size) StripFlag bits per token. */
  readonly stripFlags: Uint8Array;
  readonly eogIds: ReadonlySet<number>;
  /** Control, user-defined and unknown tokens, longest text first (the order llama.cpp splits them out of text). */
  readonly specialIds: readonly number[];
  private readonly piecesPlain: Uint8Array[];
  private readonly piecesSpecial: Uint8Array[];

  constructor(spec: VocabSpec) {
    const n = spec.tokens.length;
    if (n === 0) throw new TokenizerError("bad_vocab", "tokenizer.ggml.tokens: expected a non-empty string array, found 0 tokens");
    if (spec.scores && spec.scores.length !== n) {
      throw new TokenizerError("bad_vocab", `tokenizer.ggml.scores: expected ${n} values (one per token), found ${spec.scores.length}`);
    }
    if (spec.tokenTypes && spec.tokenTypes.length !== n) {
      throw new TokenizerError("bad_vocab", `tokenizer.ggml.token_type: expected ${n} values (one per token), found ${spec.tokenTypes.length}`);
    }
    this.model = spec.model;
    this.size = n;
    const texts: string[] = new Array(n);
    this.idByText = new Map();
    this.scores = new Float32Array(n);
    this.types = new Uint8Array(n);
    for (let id = 0; id < n; id++) {
      // llama.cpp renames empty tokens so that every text stays unique.
      const text = spec.tokens[id] === "" ? `[EMPTY_${id}]` : spec.tokens[id]!;
      const key = utf8ByteString(text);
      const previous = this.idByText.get(key);
      if (previous !== undefined) {
        throw new TokenizerError("bad_vocab", `tokenizer.ggml.tokens: token ${id} repeats the text of token ${previous} (${JSON.stringify(text)}); texts must be unique`);
      }
      texts[id] = key;
      this.idByText.set(key, id);
      this.scores[id] = spec.scores ? spec.scores[id]! : 0;
      const type = spec.tokenTypes ? spec.tokenTypes[id]! : TokenType.NORMAL;
      this.types[id] = type >= 0 && type <= TokenType.BYTE ? type : TokenType.UNDEFINED;
    }
    this.texts = texts;

    let defaults: ModelDefaults;
    if (spec.model === "gpt2") {
      const pre = findPreTokenizer(spec.pre);
      if (!pre) {
        throw new TokenizerError(
          "unsupported_pre_tokenizer",
          `tokenizer.ggml.pre is ${JSON.stringify(spec.pre)}; supported: ${SUPPORTED_PRE_TOKENIZERS.map((m) => JSON.stringify(m)).join(", ")}`,
        );
      }
      this.preTokenizer = pre;
      // BPE (llama.cpp): BOS = EOS = 11 unless the pre-tokenizer says otherwise, no UNK, no space prefix.
      defaults = { bosId: pre.defaultBosId, eosId: 11, unkId: -1, addBos: pre.addBos, addSpacePrefix: false };
    } else {
      this.preTokenizer = undefined;
      // SPM: BOS 1, EOS 2, UNK 0, add BOS, space prefix.
      defaults = { bosId: 1, eosId: 2, unkId: 0, addBos: true, addSpacePrefix: true };
    }
    // Ids from metadata only when in range; a default outside the vocabulary means none (-1).
    const inRange = (id: number | undefined): id is number => id !== undefined && Number.isInteger(id) && id >= 0 && id < n;
    const orDefault = (id: number | undefined, fallback: number): number => (inRange(id) ? id : inRange(fallback) ? fallback : -1);
    this.bosId = orDefault(spec.bosId, defaults.bosId);
    this.eosId = orDefault(spec.eosId, defaults.eosId);
    this.unkId = orDefault(spec.unkId, defaults.unkId);
    this.addBos = spec.addBos ?? defaults.addBos;
    this.addEos = spec.addEos ?? false;
    this.addSpacePrefix = spec.addSpacePrefix ?? defaults.addSpacePrefix;
    if (this.addBos && this.bosId < 0) throw new TokenizerError("bad_vocab", `the vocabulary adds BOS but has no BOS token (id ${spec.bosId ?? defaults.bosId} is outside its ${n} tokens)`);
    if (this.addEos && this.eosId < 0) throw new TokenizerError("bad_vocab", `the vocabulary adds EOS but has no EOS token (id ${spec.eosId ?? defaults.eosId} is outside its ${n} tokens)`);
    this.mergeRanks = spec.merges ? parseMerges(spec.merges) : new Map();

    // FIM tokens found by text (when metadata names none of a kind) become control tokens; pad/rep/sep end generation.
    const eog = new Set<number>();
    const idOfText = (t: string): number | undefined => this.idByText.get(utf8ByteString(t));
    for (const kind of Object.keys(FIM_TEXTS) as FimKind[]) {
      let id = spec.fimIds?.[kind];
      if (!inRange(id)) {
        id = FIM_TEXTS[kind].map(idOfText).find((x) => x !== undefined);
        if (id !== undefined) this.types[id] = TokenType.CONTROL;
      }
      if (id !== undefined && (kind === "pad" || kind === "rep" || kind === "sep")) eog.add(id);
    }
    // End of generation: tokens with EOG texts (forced to control type, as llama.cpp does), EOS, EOT, EOM.
    for (const t of EOG_TEXTS) {
      const id = idOfText(t);
      if (id === undefined) continue;
      eog.add(id);
      this.types[id] = TokenType.CONTROL;
    }
    for (const t of ALWAYS_RENDERED_TEXTS) {
      const id = idOfText(t);
      if (id !== undefined) this.types[id] = TokenType.USER_DEFINED;
    }
    for (const id of [this.eosId, spec.eotId, spec.eomId]) if (inRange(id)) eog.add(id);
    // o200k_harmony: with <|return|> and <|call|> in the set, <|end|> does not end generation and is user-defined.
    const endId = idOfText("<|end|>");
    const has = (t: string): boolean => { const id = idOfText(t); return id !== undefined && eog.has(id); };
    if (endId !== undefined && eog.has(endId) && ((has("<|return|>") && has("<|call|>")) || (has("<|calls|>") && has("<|flush|>")))) {
      eog.delete(endId);
      this.types[endId] = TokenType.USER_DEFINED;
    }
    this.eogIds = eog;

    const special: number[] = [];
    for (let id = 0; id < n; id++) {
      const t = this.types[id];
      if (t === TokenType.CONTROL || t === TokenType.USER_DEFINED || t === TokenType.UNKNOWN) special.push(id);
    }
    special.sort((a, b) => texts[b]!.length - texts[a]!.length || a - b);
    this.specialIds = special;

    // Phi-3 (by general.name): special tokens and </s> swallow the whitespace after them, except <unk> <s> <|endoftext|>.
    this.stripFlags = new Uint8Array(n); // (size)
    const name = (spec.modelName ?? "").toLowerCase();
    if (name.includes("phi-3") || name.includes("phi3")) {
      for (const id of special) this.stripFlags[id]! |= StripFlag.RSTRIP;
      const eos = idOfText("</s>");
      if (eos !== undefined) this.stripFlags[eos]! |= StripFlag.RSTRIP;
      for (const t of ["<unk>", "<s>", "<|endoftext|>"]) {
        const id = idOfText(t);
        if (id !== undefined) this.stripFlags[id]! &= ~StripFlag.RSTRIP;
      }
    }

    this.piecesPlain = new Array(n);
    this.piecesSpecial = new Array(n);
    for (let id = 0; id < n; id++) {
      this.piecesSpecial[id] = this.computePiece(id, true);
      this.piecesPlain[id] = this.computePiece(id, false);
    }
  }

  /** Byte string of `id`'s text; throws for ids outside the vocabulary. */
  text(id: number): string {
    this.checkId(id);
    return this.texts[id]!;
  }

  /** Piece bytes as llama.cpp's token_to_piece gives them (`special`: render control/unknown tokens as their text). */
  piece(id: number, special: boolean): Uint8Array {
    this.checkId(id);
    return (special ? this.piecesSpecial : this.piecesPlain)[id]!;
  }

  /** The token for one byte: "<0xHH>", else the one-byte text; llama.cpp fails when neither exists. */
  byteToken(byte: number): number {
    const hex = byte.toString(16).toUpperCase().padStart(2, "0");
    const id = this.idByText.get(`<0x${hex}>`) ?? this.idByText.get(String.fromCharCode(byte));
    if (id === undefined) {
      throw new TokenizerError("no_byte_token", `byte 0x${hex} has no token: the vocabulary holds neither "<0x${hex}>" nor the single byte`);
    }
    return id;
  }

  checkId(id: number): void {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) {
      throw new TokenizerError("bad_token_id", `token id ${id} is outside the vocabulary (0..${this.size - 1})`);
    }
  }

  private computePiece(id: number, special: boolean): Uint8Array {
    const type = this.types[id];
    const text = this.texts[id]!;
    if (type === TokenType.UNKNOWN || type === TokenType.CONTROL) return special ? byteStringToBytes(text) : new Uint8Array(0);
    if (type === TokenType.USER_DEFINED) return byteStringToBytes(text);
    if (type === TokenType.NORMAL && this.model === "gpt2") return byteStringToBytes(byteLevelDecode(text));
    if (type === TokenType.NORMAL) return byteStringToBytes(text.split(ESCAPED_SPACE).join(" "));
    if (type === TokenType.BYTE) return Uint8Array.of(parseHexPrefix(text.slice(3, 5)));
    return new Uint8Array(0); // unused and undefined tokens render as nothing
  }
}

// ---------------------------------------------------------------------------------------------------------------
// From GGUF metadata

function describe(value: GgufValue | undefined): string {
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  if (ArrayBuffer.isView(value)) return `a numeric array of ${(value as ArrayLike<unknown>).length}`;
  return `${typeof value} ${String(value)}`;
}

function optNumber(meta: Map<string, GgufValue>, key: string): number | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "number") return v;
  if (typeof v === "bigint") return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= 0n ? Number(v) : -1;
  throw new TokenizerError("bad_vocab", `${key}: expected an integer, found ${describe(v)}`);
}

function optBool(meta: Map<string, GgufValue>, key: string): boolean | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "boolean") return v;
  throw new TokenizerError("bad_vocab", `${key}: expected a bool, found ${describe(v)}`);
}

function optNumberArray(meta: Map<string, GgufValue>, key: string): ArrayLike<number> | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (ArrayBuffer.isView(v) && !(v instanceof BigInt64Array) && !(v instanceof BigUint64Array)) return v as ArrayLike<number>;
  if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Array.from(v, (x) => Number(x));
  throw new TokenizerError("bad_vocab", `${key}: expected a numeric array, found ${describe(v)}`);
}

function optString(meta: Map<string, GgufValue>, key: string): string | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (typeof v === "string") return v;
  throw new TokenizerError("bad_vocab", `${key}: expected a string, found ${describe(v)}`);
}

function optStringArray(meta: Map<string, GgufValue>, key: string): string[] | undefined {
  const v = meta.get(key);
  if (v === undefined) return undefined;
  if (Array.isArray(v) && v.every((x) => typeof x === "string")) return v as string[];
  throw new TokenizerError("bad_vocab", `${key}: expected a string array, found ${describe(v)}`);
}

/** Key of a merge pair in Vocab.mergeRanks; U+0100 cannot occur in byte strings, so keys never collide. */
export function mergeKey(left: string, right: string): string {
  return left + "\u0100" + right;
}

/**
 * Merge ranks from `tokenizer.ggml.merges` lines, as llama.cpp reads them: split at the first space after the first
 * byte ("left right"); a line with no such space is the pair ("", ""); a repeated pair keeps its first rank.
 */
export function parseMerges(lines: readonly string[]): Map<string, number> {
  const ranks = new Map<string, number>();
  for (let rank = 0; rank < lines.length; rank++) {
    const line = utf8ByteString(lines[rank]!);
    const at = line.indexOf(" ", 1);
    const key = at < 0 ? mergeKey("", "") : mergeKey(line.slice(0, at), line.slice(at + 1));
    if (!ranks.has(key)) ranks.set(key, rank);
  }
  return ranks;
}

/** The `tokenizer.ggml.*` keys of a GGUF file as a VocabSpec (model and tokens required). */
export function vocabSpecFromMetadata(meta: Map<string, GgufValue>): VocabSpec {
  const model = meta.get("tokenizer.ggml.model");
  if (typeof model !== "string") {
    throw new TokenizerError("bad_vocab", `tokenizer.ggml.model: expected a string, found ${describe(model)}`);
  }
  const tokens = meta.get("tokenizer.ggml.tokens");
  if (!Array.isArray(tokens) || !tokens.every((t) => typeof t === "string")) {
    throw new TokenizerError("bad_vocab", `tokenizer.ggml.tokens: expected a string array, found ${describe(tokens)}`);
  }
  return {
    model,
    tokens: tokens as string[],
    scores: optNumberArray(meta, "tokenizer.ggml.scores"),
    tokenTypes: optNumberArray(meta, "tokenizer.ggml.token_type"),
    bosId: optNumber(meta, "tokenizer.ggml.bos_token_id"),
    eosId: optNumber(meta, "tokenizer.ggml.eos_token_id"),
    unkId: optNumber(meta, "tokenizer.ggml.unknown_token_id"),
    eotId: optNumber(meta, "tokenizer.ggml.eot_token_id"),
    eomId: optNumber(meta, "tokenizer.ggml.eom_token_id"),
    addBos: optBool(meta, "tokenizer.ggml.add_bos_token"),
    addEos: optBool(meta, "tokenizer.ggml.add_eos_token"),
    addSpacePrefix: optBool(meta, "tokenizer.ggml.add_space_prefix"),
    pre: optString(meta, "tokenizer.ggml.pre"),
    merges: optStringArray(meta, "tokenizer.ggml.merges"),
    modelName: optString(meta, "general.name"),
    fimIds: {
      pre: optNumber(meta, "tokenizer.ggml.fim_pre_token_id") ?? optNumber(meta, "tokenizer.ggml.prefix_token_id"),
      suf: optNumber(meta, "tokenizer.ggml.fim_suf_token_id") ?? optNumber(meta, "tokenizer.ggml.suffix_token_id"),
      mid: optNumber(meta, "tokenizer.ggml.fim_mid_token_id") ?? optNumber(meta, "tokenizer.ggml.middle_token_id"),
      pad: optNumber(meta, "tokenizer.ggml.fim_pad_token_id"),
      rep: optNumber(meta, "tokenizer.ggml.fim_rep_token_id"),
      sep: optNumber(meta, "tokenizer.ggml.fim_sep_token_id"),
    },
  };
}
