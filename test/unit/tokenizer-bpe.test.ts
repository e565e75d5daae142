/**
 * Byte-level BPE pieces on hand-worked examples: the GPT-2 byte map, pre-tokenizer word cuts (worked out by hand
 * from llama.cpp's scanners), merge order and ties, special tokens, clean_spaces, metadata defaults and errors.
 * The conformance test (tokenize-bpe) checks the whole against llama.cpp.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { BYTE_TO_CODE_POINT, byteLevelDecode, byteLevelEncode } from "../../src/tokenizer/byte-level.js";
import { cleanSpaces } from "../../src/tokenizer/bpe.js";
import { BpeTokenizer, TokenType, TokenizerError, Vocab, preTokenize, tokenizerFromGguf, type SplitterName, type VocabSpec } from "../../src/tokenizer/index.js";
import { parseMerges, mergeKey, utf8ByteString } from "../../src/tokenizer/vocab.js";
import type { GgufFile, GgufValue } from "../../src/gguf/types.js";
import { byteLevel, trainBpe } from "../helpers/bpe-vocab.js";

/** Words of `text` as a splitter cuts it. */
function words(splitter: SplitterName, text: string): string[] {
  const cpts = Array.from(text, (c) => c.codePointAt(0)!);
  const out: string[] = [];
  let at = 0;
  for (const n of preTokenize(splitter, cpts)) {
    out.push(String.fromCodePoint(...cpts.slice(at, at + n)));
    at += n;
  }
  return out;
}

test("GPT-2 byte map: printable bytes stand for themselves, the 68 others follow U+0100 in byte order", () => {
  assert.equal(BYTE_TO_CODE_POINT[0x21], 0x21);
  assert.equal(BYTE_TO_CODE_POINT[0x00], 0x100);
  assert.equal(BYTE_TO_CODE_POINT[0x0a], 0x10a); // Ċ
  assert.equal(BYTE_TO_CODE_POINT[0x20], 0x120); // Ġ
  assert.equal(BYTE_TO_CODE_POINT[0x7f], 0x121);
  assert.equal(BYTE_TO_CODE_POINT[0xad], 0x143); // Ń
  assert.equal(new Set(BYTE_TO_CODE_POINT).size, 256);
  const raw = utf8ByteString("héllo 日本\n");
  assert.equal(byteLevelDecode(byteLevelEncode(raw)), raw);
  assert.equal(byteLevelEncode(utf8ByteString(" a")), utf8ByteString("Ġa"));
  // A character outside the map renders as llama.cpp's [UNK_BYTE_0x..<token text>].
  assert.equal(byteLevelDecode("a b"), "a[UNK_BYTE_0x20a b]b");
});

test("Llama 3 cuts: letters with one leading non-letter, digits in threes, whitespace runs, newlines", () => {
  assert.deepEqual(words("llama3", "Hello world"), ["Hello", " world"]);
  assert.deepEqual(words("llama3", "1234567"), ["123", "456", "7"]);
  assert.deepEqual(words("llama3", " 123"), [" ", "123"]);
  assert.deepEqual(words("llama3", "a  b"), ["a", " ", " b"]);
  assert.deepEqual(words("llama3", "a   "), ["a", "   "]);
  assert.deepEqual(words("llama3", "x\n\n y"), ["x", "\n\n", " y"]);
  assert.deepEqual(words("llama3", "I'M here's"), ["I", "'M", " here", "'s"]);
  assert.deepEqual(words("llama3", "(hi) !!\n\nok"), ["(hi", ")", " !!\n\n", "ok"]);
});

test("Qwen2 cuts digits one by one; GPT-2 keeps digit runs, a leading space, and lower-case contractions only", () => {
  assert.deepEqual(words("qwen2", "a123"), ["a", "1", "2", "3"]);
  assert.deepEqual(words("gpt2", "1234567 x"), ["1234567", " x"]);
  assert.deepEqual(words("gpt2", " 123"), [" 123"]);
  assert.deepEqual(words("gpt2", "I'M it's"), ["I", "'", "M", " it", "'s"]);
  assert.deepEqual(words("gpt2", "a\n\nb"), ["a", "\n", "\n", "b"]);
});

test("default: punctuation runs, then GPT-2, then digit runs, then three-digit groups", () => {
  assert.deepEqual(words("default", "a,b"), ["a", ",", "b"]);
  assert.deepEqual(words("default", "abc1234"), ["abc", "123", "4"]);
});

test("llama.cpp's whitespace set and Unicode tables, not JS's: NEL is whitespace, BOM is not, new letters are not letters", () => {
  assert.deepEqual(words("llama3", "a\u0085\u0085b"), ["a", "\u0085", "\u0085b"]);
  assert.deepEqual(words("llama3", "c\ufeff\ufeffd"), ["c", "\ufeff\ufeff", "d"]);
  // U+1C89 (Unicode 16) is unassigned in llama.cpp's tables, so it only prefixes the next letters.
  assert.deepEqual(words("llama3", "x\u1C89y"), ["x", "\u1C89y"]);
});

/** Byte characters, then `extra` tokens; merges given as "left right" of plain text (encoded here). */
function bpeSpec(extra: string[], merges: string[], overrides: Partial<VocabSpec> = {}): VocabSpec {
  const tokens = [...BYTE_TO_CODE_POINT.map((cp) => String.fromCharCode(cp)), ...extra.map(byteLevel)];
  return {
    model: "gpt2",
    tokens,
    tokenTypes: Int32Array.from(tokens, () => TokenType.NORMAL),
    merges: merges.map((m) => m.split(" ").map(byteLevel).join(" ")),
    pre: "gpt-2",
    ...overrides,
  };
}
const byteId = (ch: string): number => BYTE_TO_CODE_POINT.indexOf(ch.charCodeAt(0));

test("merges apply by rank, lowest first; equal ranks merge leftmost first", () => {
  const ab = 256, bc = 257, abc = 258;
  const first = new BpeTokenizer(new Vocab(bpeSpec(["ab", "bc", "abc"], ["a b", "b c", "ab c"])));
  assert.deepEqual(first.encode("abc"), [abc]);
  const second = new BpeTokenizer(new Vocab(bpeSpec(["ab", "bc", "abc"], ["b c", "a b", "a bc"])));
  assert.deepEqual(second.encode("abc"), [abc]);
  const noFinal = new BpeTokenizer(new Vocab(bpeSpec(["ab", "bc", "abc"], ["b c", "a b"])));
  assert.deepEqual(noFinal.encode("abc"), [byteId("a"), bc]);
  const ties = new BpeTokenizer(new Vocab(bpeSpec(["aa"], ["a a"])));
  assert.deepEqual(ties.encode("aaa"), [256, byteId("a")]);
  assert.deepEqual(ties.encode(" aaaa"), [byteId("Ġ"), 256, 256]);
  assert.equal(ab, 256);
});

test("merge lines split at the first space after the first byte; repeated pairs keep their first rank", () => {
  const ranks = parseMerges(["a b", "  x", "a b", "ab"]);
  assert.equal(ranks.get(mergeKey("a", "b")), 0);
  assert.equal(ranks.get(mergeKey(" ", "x")), 1);
  assert.equal(ranks.get(mergeKey("", "")), 3);
});

test("special tokens: user-defined always split out, control ones only with parseSpecial; BOS/EOS from metadata", () => {
  const spec = bpeSpec(["ab"], ["a b"]);
  const tokens = [...spec.tokens, "<|begin_of_text|>", "<tool>"];
  const types = Int32Array.from([...spec.tokenTypes as Int32Array, TokenType.CONTROL, TokenType.USER_DEFINED]);
  const tok = new BpeTokenizer(new Vocab({ ...spec, tokens, tokenTypes: types, pre: "llama-bpe", bosId: 257 }));
  assert.equal(tok.addBos, true, "llama-bpe adds BOS when metadata is silent");
  assert.deepEqual(tok.encode("ab<tool>", { addSpecial: false }), [256, 258]);
  assert.deepEqual(tok.encode("<|begin_of_text|>ab", { addSpecial: false, parseSpecial: true }), [257, 256]);
  assert.deepEqual(tok.encode("ab"), [257, 256]);
  assert.equal(tok.decode([257, 256, 258]), "ab<tool>");
  assert.equal(tok.decode([257, 256], { renderSpecial: true }), "<|begin_of_text|>ab");
  const gpt2 = new BpeTokenizer(new Vocab(bpeSpec([], [])));
  assert.deepEqual([gpt2.addBos, gpt2.bosId, gpt2.eosId], [false, 11, 11], "llama.cpp's BPE defaults");
});

test("clean_spaces: space before . , ! ? dropped, ' between spaces joined, 's 'm 're 've attached", () => {
  assert.equal(cleanSpaces("it 's a test , isn 't it ? x ' y"), "it's a test, isn 't it? x'y");
  assert.equal(cleanSpaces(" . ok ! we 're"), ". ok! we're");
  const gpt2 = new BpeTokenizer(new Vocab(bpeSpec([], [])));
  const qwen = new BpeTokenizer(new Vocab(bpeSpec([], [], { pre: "qwen2" })));
  const text = "hi , you 're";
  assert.equal(gpt2.decode(gpt2.encode(text)), "hi, you're");
  assert.equal(qwen.decode(qwen.encode(text)), text, "qwen2 does not clean spaces");
});

test("unsupported pre-tokenizers and models fail naming the supported ones", () => {
  assert.throws(
    () => new Vocab(bpeSpec([], [], { pre: "no-such-pre" })),
    (e: unknown) => e instanceof TokenizerError && e.code === "unsupported_pre_tokenizer" && /"no-such-pre"/.test(e.message) &&
      ["llama-bpe", "qwen2", "gpt-2", "default"].every((n) => e.message.includes(`"${n}"`)),
  );
  const metadata = new Map<string, GgufValue>([["tokenizer.ggml.model", "gpt2"], ["tokenizer.ggml.tokens", ["a", "b"]], ["tokenizer.ggml.pre", "qwen2"]]);
  const tok = tokenizerFromGguf({ name: "x.gguf", metadata } as unknown as GgufFile);
  assert.ok(tok instanceof BpeTokenizer);
  assert.deepEqual([tok.bosId, tok.eosId], [-1, -1], "default ids outside a 2-token vocabulary mean none");
});

test("the test helper's BPE trainer merges the most frequent pair first", () => {
  const merges = trainBpe(new Map([["abab", 3], ["abc", 1]]), 3);
  assert.deepEqual(merges[0], ["a", "b"]);
  assert.deepEqual(merges[1], ["ab", "ab"]);
});
