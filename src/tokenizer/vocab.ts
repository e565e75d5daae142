/**
 * A tokenizer vocabulary as llama.cpp loads it from GGUF metadata (`tokenizer.ggml.*`): token texts, scores, token
 * types, special ids, BOS/EOS and space-prefix flags, the end-of-generation set and each token's decoded piece.
 *
 * Token texts are held as "byte strings": one JS char per UTF-8 byte (code units 0..255). Tokenizers work on the
 * input's UTF-8 bytes in the same form, so every lookup compares bytes exactly as llama.cpp's std::string maps do.
 */
import type { GgufValue } from "../gguf/types.js";

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

export type TokenizerErrorCode = "unsupported_model" | "bad_vocab" | "no_byte_token" | "bad_token_id";

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
}

/** Token texts that end generation (llama.cpp matches EOG tokens by text; these also become control tokens). */
const EOG_TEXTS = new Set([
  "<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>", "<|eom_id|>",
  "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>",
]);

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

const ESCAPED_SPACE = "\xE2\x96\x81"; // "▁" (U+2581) as UTF-8 bytes

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

    // SPM defaults (llama.cpp): BOS 1, EOS 2, UNK 0, add BOS, no EOS, space prefix; ids from metadata only when in range.
    const inRange = (id: number | undefined): id is number => id !== undefined && Number.isInteger(id) && id >= 0 && id < n;
    this.bosId = inRange(spec.bosId) ? spec.bosId : 1;
    this.eosId = inRange(spec.eosId) ? spec.eosId : 2;
    this.unkId = inRange(spec.unkId) ? spec.unkId : 0;
    this.addBos = spec.addBos ?? true;
    this.addEos = spec.addEos ?? false;
    this.addSpacePrefix = spec.addSpacePrefix ?? true;
    if (this.addBos && this.bosId >= n) throw new TokenizerError("bad_vocab", `BOS id ${this.bosId} is outside the vocabulary of ${n} tokens`);
    if (this.addEos && this.eosId >= n) throw new TokenizerError("bad_vocab", `EOS id ${this.eosId} is outside the vocabulary of ${n} tokens`);

    // End of generation: tokens with EOG texts (forced to control type, as llama.cpp does), EOS, EOT, EOM.
    const eog = new Set<number>();
    for (let id = 0; id < n; id++) {
      if (EOG_TEXTS.has(texts[id]!)) {
        eog.add(id);
        this.types[id] = TokenType.CONTROL;
      }
    }
    for (const id of [this.eosId, spec.eotId, spec.eomId]) if (inRange(id)) eog.add(id);
    this.eogIds = eog;

    const special: number[] = [];
    for (let id = 0; id < n; id++) {
      const t = this.types[id];
      if (t === TokenType.CONTROL || t === TokenType.USER_DEFINED || t === TokenType.UNKNOWN) special.push(id);
    }
    special.sort((a, b) => texts[b]!.length - texts[a]!.length || a - b);
    this.specialIds = special;

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
  };
}
