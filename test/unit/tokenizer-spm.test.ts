/**
 * SPM tokenizer on hand-built vocabularies: merge order, ties, byte fallback, spaces, special tokens, decoding,
 * streaming decoding, errors. Expected ids are worked out by hand in the comments, and a naive quadratic merge
 * (rescan every pair each step) serves as an independent reference on random inputs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  SpmTokenizer,
  TokenTextDecoder,
  TokenType,
  TokenizerError,
  Vocab,
  tokenizerFromGguf,
  type VocabSpec,
} from "../../src/tokenizer/index.js";
import type { GgufFile, GgufValue } from "../../src/gguf/types.js";

/** <unk>, <s>, </s>, 256 byte tokens, then the given normal tokens (text → score), then extras. */
function buildSpec(normal: [string, number][], extra: { text: string; type: number }[] = [], overrides: Partial<VocabSpec> = {}): VocabSpec {
  const tokens = ["<unk>", "<s>", "</s>"];
  const types: number[] = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL];
  const scores: number[] = [0, 0, 0];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(TokenType.BYTE);
    scores.push(0);
  }
  for (const [text, score] of normal) {
    tokens.push(text);
    types.push(TokenType.NORMAL);
    scores.push(score);
  }
  for (const { text, type } of extra) {
    tokens.push(text);
    types.push(type);
    scores.push(0);
  }
  return { model: "llama", tokens, scores: Float32Array.from(scores), tokenTypes: Int32Array.from(types), ...overrides };
}

const BYTE0 = 3; // id of <0x00>
const byteId = (b: number): number => BYTE0 + b;

const NORMAL: [string, number][] = [
  ["▁", -1], ["a", -2], ["b", -3], ["c", -4], ["x", -5], ["y", -5],
  ["▁a", -0.5], ["ab", -0.6], ["bc", -0.6], ["abc", -0.1], ["▁▁", -0.7], ["▁b", -0.55], ["xy", -0.9], ["yx", -0.9],
];
const spec = buildSpec(NORMAL, [{ text: "<tag>", type: TokenType.USER_DEFINED }]);
const tok = new SpmTokenizer(new Vocab(spec));
const id = (text: string): number => {
  const i = spec.tokens.indexOf(text);
  assert.ok(i >= 0, `no token ${text}`);
  return i;
};
const bytesOf = (s: string): number[] => Array.from(new TextEncoder().encode(s), byteId);

test("highest score merges first; a merge makes overlapping pairs stale", () => {
  // "▁abc": ▁a (-0.5) merges first, so "ab" is stale and never forms "abc"; then "bc".
  assert.deepEqual(tok.encode("abc", { addSpecial: false }), [id("▁a"), id("bc")]);
});

test("equal scores merge leftmost first; a higher score wins over position", () => {
  const noPrefix = new SpmTokenizer(new Vocab({ ...spec, addSpacePrefix: false }));
  // "xyx": xy and yx tie at -0.9, the left pair wins.
  assert.deepEqual(noPrefix.encode("xyx", { addSpecial: false }), [id("xy"), id("x")]);
  const yxBetter = buildSpec(NORMAL.map(([t, s]): [string, number] => [t, t === "yx" ? -0.8 : s]), [], { addSpacePrefix: false });
  const yxTok = new SpmTokenizer(new Vocab(yxBetter));
  assert.deepEqual(yxTok.encode("xyx", { addSpecial: false }), [yxBetter.tokens.indexOf("x"), yxBetter.tokens.indexOf("yx")]);
  // Without the space prefix "abc": ab and bc tie, ab wins, then ab+c forms abc.
  assert.deepEqual(noPrefix.encode("abc", { addSpecial: false }), [id("abc")]);
});

test("characters missing from the vocabulary fall back to their UTF-8 byte tokens", () => {
  assert.deepEqual(tok.encode("é", { addSpecial: false }), [id("▁"), byteId(0xc3), byteId(0xa9)]);
  assert.deepEqual(tok.encode("a😀", { addSpecial: false }), [id("▁a"), byteId(0xf0), byteId(0x9f), byteId(0x98), byteId(0x80)]);
  // Mojibake "â€™" is three characters of 2 + 3 + 3 bytes.
  assert.deepEqual(tok.encode("â€™", { addSpecial: false }), [id("▁"), ...bytesOf("â€™")]);
  assert.deepEqual(tok.encode("a\nb", { addSpecial: false }), [id("▁a"), byteId(0x0a), id("b")]);
  assert.deepEqual(tok.encode("\t", { addSpecial: false }), [id("▁"), byteId(0x09)]);
});

test("empty text gives only what addSpecial adds", () => {
  assert.deepEqual(tok.encode(""), [1]);
  assert.deepEqual(tok.encode("", { addSpecial: false }), []);
  const withEos = new SpmTokenizer(new Vocab({ ...spec, addEos: true }));
  assert.deepEqual(withEos.encode(""), [1, 2]);
  assert.deepEqual(withEos.encode("a"), [1, id("▁a"), 2]);
  const noBos = new SpmTokenizer(new Vocab({ ...spec, addBos: false }));
  assert.deepEqual(noBos.encode("a"), [id("▁a")]);
});

test("leading, trailing and repeated spaces", () => {
  // "▁a▁▁b": ▁a, then ▁b (-0.55) beats ▁▁ (-0.7), which is then stale.
  assert.deepEqual(tok.encode("a  b", { addSpecial: false }), [id("▁a"), id("▁"), id("▁b")]);
  assert.deepEqual(tok.encode("a ", { addSpecial: false }), [id("▁a"), id("▁")]);
  // " a" becomes "▁▁a": ▁a (-0.5) beats ▁▁ (-0.7).
  assert.deepEqual(tok.encode(" a", { addSpecial: false }), [id("▁"), id("▁a")]);
  assert.deepEqual(tok.encode("   ", { addSpecial: false }), [id("▁▁"), id("▁▁")]);
});

test("add_space_prefix false adds no leading ▁", () => {
  const noPrefix = new SpmTokenizer(new Vocab({ ...spec, addSpacePrefix: false }));
  assert.deepEqual(noPrefix.encode("a", { addSpecial: false }), [id("a")]);
  assert.deepEqual(noPrefix.encode(" a"), [1, id("▁a")]);
  assert.equal(noPrefix.decode([id("▁a")]), " a");
});

test("control tokens in text stay text unless parseSpecial; user-defined tokens always split", () => {
  assert.deepEqual(tok.encode("<s>a", { addSpecial: false }), [id("▁"), ...bytesOf("<s>"), id("a")]);
  // The text after a special token gets the space prefix again.
  assert.deepEqual(tok.encode("<s>a", { addSpecial: false, parseSpecial: true }), [1, id("▁a")]);
  assert.deepEqual(tok.encode("a<tag>b", { addSpecial: false }), [id("▁a"), id("<tag>"), id("▁b")]);
  assert.deepEqual(tok.encode("<tag><tag>", { addSpecial: false }), [id("<tag>"), id("<tag>")]);
});

test("decode strips one leading space, keeps it after a leading BOS, joins bytes across tokens", () => {
  assert.equal(tok.decode([id("▁a"), id("bc")]), "abc");
  assert.equal(tok.decode([id("▁"), id("▁a")]), " a");
  // BOS renders as "" but uses up the one strip (llama.cpp detokenize with remove_special false).
  assert.equal(tok.decode([1, id("▁a")]), " a");
  assert.equal(tok.decode([1, id("▁a")], { removeSpecial: true }), " a");
  assert.equal(tok.decode([1, id("▁a"), 2], { renderSpecial: true }), "<s> a</s>");
  assert.equal(tok.decode([byteId(0xc3), byteId(0xa9)]), "é");
  assert.equal(tok.decode([byteId(0xc3)]), "\ufffd");
  assert.equal(tok.decode([id("<tag>"), 0]), "<tag>");
  for (const text of ["a  b", "é😀 â€™", "x\ty\n\nz", "<s>", "ab c "]) {
    assert.equal(tok.decode(tok.encode(text, { addSpecial: false })), text, JSON.stringify(text));
  }
  assert.throws(() => tok.decode([spec.tokens.length]), (e: unknown) => e instanceof TokenizerError && e.code === "bad_token_id");
});

test("tokenBytes gives byte tokens' byte, spaces for ▁, nothing for control tokens", () => {
  assert.deepEqual(tok.tokenBytes(byteId(0x0a)), Uint8Array.of(10));
  assert.deepEqual(tok.tokenBytes(id("▁a")), Uint8Array.of(0x20, 0x61));
  assert.deepEqual(tok.tokenBytes(1), new Uint8Array(0));
  assert.deepEqual(tok.tokenBytes(1, true), new TextEncoder().encode("<s>"));
});

test("TokenTextDecoder emits whole characters only", () => {
  const dec = new TokenTextDecoder(tok);
  const ids = [id("▁a"), ...bytesOf("😀"), id("b")];
  const outputs = ids.map((i) => dec.push(i));
  assert.deepEqual(outputs, [" a", "", "", "", "😀", "b"]);
  assert.equal(dec.flush(), "");
  const dec2 = new TokenTextDecoder(tok, { stripLeadingSpace: true });
  assert.equal(dec2.push(id("▁a")) + dec2.push(byteId(0xe2)), "a");
  assert.equal(dec2.flush(), "\ufffd");
});

test("end of generation: EOS and tokens with end-of-turn texts", () => {
  const v = new SpmTokenizer(new Vocab(buildSpec(NORMAL, [{ text: "<|im_end|>", type: TokenType.NORMAL }])));
  const imEnd = 3 + 256 + NORMAL.length;
  assert.equal(v.isEog(2), true);
  assert.equal(v.isEog(imEnd), true);
  assert.equal(v.isEog(1), false);
  assert.equal(v.isEog(id("a")), false);
  assert.equal(v.decode([id("▁a"), imEnd]), "a", "end-of-turn tokens become control tokens and render as nothing");
});

test("bad vocabularies and unsupported models fail with typed errors", () => {
  const isCode = (code: string) => (e: unknown) => e instanceof TokenizerError && e.code === code;
  assert.throws(() => new Vocab({ ...spec, tokens: [...spec.tokens.slice(0, -1), "a"] }), isCode("bad_vocab"));
  assert.throws(() => new Vocab({ ...spec, scores: new Float32Array(3) }), isCode("bad_vocab"));
  const noBytes = new SpmTokenizer(new Vocab({ model: "llama", tokens: ["<unk>", "<s>", "</s>", "▁", "a"] }));
  assert.deepEqual(noBytes.encode("a a"), [1, 3, 4, 3, 4]);
  assert.throws(() => noBytes.encode("é"), (e: unknown) => isCode("no_byte_token")(e) && /0xC3/.test((e as Error).message));
  const metadata = new Map<string, GgufValue>([["tokenizer.ggml.model", "bert"], ["tokenizer.ggml.tokens", ["a", "b"]]]);
  const file = { name: "x.gguf", metadata } as unknown as GgufFile;
  assert.throws(() => tokenizerFromGguf(file), (e: unknown) => isCode("unsupported_model")(e) && /"bert"/.test((e as Error).message) && /"llama", "gpt2"/.test((e as Error).message));
  metadata.set("tokenizer.ggml.model", "llama");
  metadata.set("tokenizer.ggml.add_space_prefix", false);
  const fromMeta = tokenizerFromGguf(file);
  // The default EOS id 2 is outside this 2-token vocabulary: llama.cpp then has no EOS (-1).
  assert.deepEqual([fromMeta.bosId, fromMeta.eosId, fromMeta.addBos, fromMeta.vocabSize], [1, -1, true, 2]);
  assert.deepEqual(fromMeta.encode("ab", { addSpecial: false }), [0, 1]);
});

// ---------------------------------------------------------------------------------------------------------------
// Naive reference: rescan every adjacent pair at each step, merge the best (score, then leftmost), bytes for leftovers.

function naiveSpm(v: Vocab, text: string): number[] {
  const escaped = ((v.addSpacePrefix ? " " : "") + text).replaceAll(" ", "▁");
  const utf8 = (s: string) => Array.from(new TextEncoder().encode(s), (b) => String.fromCharCode(b)).join("");
  let symbols = Array.from(escaped, utf8);
  for (;;) {
    let best = -1;
    let bestScore = -Infinity;
    for (let i = 0; i + 1 < symbols.length; i++) {
      const tokenId = v.idByText.get(symbols[i]! + symbols[i + 1]!);
      if (tokenId !== undefined && v.scores[tokenId]! > bestScore) {
        best = i;
        bestScore = v.scores[tokenId]!;
      }
    }
    if (best < 0) break;
    symbols = [...symbols.slice(0, best), symbols[best]! + symbols[best + 1]!, ...symbols.slice(best + 2)];
  }
  return symbols.flatMap((s) => {
    const tokenId = v.idByText.get(s);
    return tokenId !== undefined ? [tokenId] : Array.from(s, (c) => v.byteToken(c.charCodeAt(0)));
  });
}

test("random texts and vocabularies agree with the naive quadratic merge", () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = ["a", "b", "c", " ", "é", "日"];
  for (let round = 0; round < 40; round++) {
    const pieces = new Map<string, number>();
    for (const ch of ["▁", "a", "b", "c", "é"]) pieces.set(ch, -10 - rand(5));
    for (let k = 0; k < 25; k++) {
      let t = "";
      const len = 2 + rand(4);
      for (let j = 0; j < len; j++) t += alphabet[rand(alphabet.length)]!.replace(" ", "▁");
      pieces.set(t, -rand(8)); // few distinct scores: plenty of ties
    }
    const v = new Vocab(buildSpec([...pieces], [], { addSpacePrefix: rand(2) === 0 }));
    const t = new SpmTokenizer(v);
    for (let k = 0; k < 20; k++) {
      let text = "";
      const len = 1 + rand(24);
      for (let j = 0; j < len; j++) text += alphabet[rand(alphabet.length)];
      assert.deepEqual(t.encode(text, { addSpecial: false }), naiveSpm(v, text), JSON.stringify(text));
    }
  }
});
