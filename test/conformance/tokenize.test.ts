/**
 * Tokenization and detokenization identical to llama.cpp (node-llama-cpp 3.21.1 as the oracle).
 *
 * node-llama-cpp's model.tokenize(text) is llama.cpp's tokenize with add_special = false and parse_special = false;
 * the BOS that llama.cpp adds for these models (model.tokens.shouldPrependBosToken) is made explicit here.
 * model.detokenize(ids) is llama_detokenize with remove_special = false, unparse_special = false.
 */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Token } from "node-llama-cpp";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { closeLlama, llamaModel } from "../helpers/llamacpp.js";
import { asTokens, firstDifference, tokenizerFromFile } from "../helpers/tokenizer-compare.js";

after(closeLlama);


const HARD_STRINGS = [
  "", " ", "  ", "   ", "\n", "\n\n\n", "\t", "a", "Hello world", "Hello  world", "  leading spaces", "trailing spaces   ",
  "multiple   spaces   inside", "line one\nline two\r\nline three", "tab\tseparated\tvalues", "\t\t indented\n\t",
  "Once upon a time, there was a little girl named Lily.", "😀", "emoji 🎉🚀👍🏽 in text", "👨‍👩‍👧 family",
  "日本語のテキストです。", "中文测试：你好，世界！", "한국어 텍스트", "Ελληνικά και кириллица", "café naïve résumé ñ ü",
  "0", "42", "1234567890", "3.14159265358979", "31415926535897932384626433832795028841971", "1,000,000 and 1.000.000",
  "don't won't can't I'm you're they've we'll she'd it's", "\"quoted\" 'single' “curly” ‘also’ — – …",
  "def f(x):\n    return x ** 2  # square\n", "if (a && b) { c[0] = d->e; } // C", "<html><body class=\"x\">&amp;</body></html>",
  "She said, â€œHi!â€ and it was Tomâ€™s.", "â€™", "Ã©Ã¨", "literal <s> in text", "<s>", "</s>", "<unk> token", "<0x41> byte text",
  "▁ already escaped ▁▁", "\u00a0non-breaking\u00a0space", "\u200bzero width", "\ufeffBOM first", "mixed\u0000nul",
  "a\u0301 combining", "alll xlll (tied pairs: leftmost merges first)", "lone \ud800 surrogate", "~!@#$%^&*()_+`-={}|[]\\:\";'<>?,./", "x".repeat(300), " ".repeat(50) + "end",
];

test("stories260K: the evaluation text, whole and per paragraph, and hard strings match llama.cpp", { skip: sharedSkip(sharedPaths.stories260K, sharedPaths.evalText) }, async (t) => {
  const model = await llamaModel(sharedPaths.stories260K);
  const tok = tokenizerFromFile(sharedPaths.stories260K);
  const text = readFileSync(sharedPaths.evalText, "utf8");
  const bos = model.tokens.bos;
  assert.equal(tok.addBos, model.tokens.shouldPrependBosToken, "add BOS as llama.cpp does");
  assert.equal(tok.bosId, bos);
  assert.equal(tok.eosId, model.tokens.eos);
  const withBos = (ids: readonly number[]): number[] => (model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...ids] : [...ids]);

  const started = performance.now();
  const ours = tok.encode(text);
  const ms = performance.now() - started;
  const theirs = withBos(Array.from(model.tokenize(text)));
  t.diagnostic(`whole text: ${text.length} chars, ${ours.length} tokens (BOS included), encoded in ${ms.toFixed(0)} ms`);
  await t.test(`whole text: ${ours.length} tokens identical`, () => {
    assert.ok(ours.length > 1000, "the text gives many tokens");
    assert.deepEqual(ours, theirs, firstDifference(ours, theirs));
  });

  await t.test("whole text decodes as llama.cpp detokenizes, back to the original text", () => {
    const body = ours.slice(1);
    assert.equal(tok.decode(body), model.detokenize(asTokens(body)));
    assert.equal(tok.decode(body), text);
    assert.equal(tok.decode(ours), model.detokenize(asTokens(ours)));
    assert.equal(tok.decode(ours, { renderSpecial: true }), model.detokenize(asTokens(ours), true));
  });

  await t.test("every paragraph separately", () => {
    const paragraphs = text.split("\n\n").filter((p) => p.length > 0);
    assert.ok(paragraphs.length > 100);
    let mismatches = 0;
    let firstMismatch = "";
    for (const paragraph of paragraphs) {
      const a = tok.encode(paragraph);
      const b = withBos(Array.from(model.tokenize(paragraph)));
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        if (mismatches++ === 0) firstMismatch = `${JSON.stringify(paragraph.slice(0, 80))}: ${firstDifference(a, b)}`;
      }
    }
    t.diagnostic(`${paragraphs.length} paragraphs`);
    assert.equal(mismatches, 0, firstMismatch);
  });

  await t.test(`${HARD_STRINGS.length} hard strings: ids and decoding`, () => {
    for (const s of HARD_STRINGS) {
      const label = JSON.stringify(s.slice(0, 60));
      const a = tok.encode(s, { addSpecial: false });
      const b = Array.from(model.tokenize(s));
      assert.deepEqual(a, b, `${label}: ${firstDifference(a, b)}`);
      assert.deepEqual(tok.encode(s), withBos(b), `${label} with BOS`);
      assert.equal(tok.decode(a), model.detokenize(b), `${label} decoded`);
      assert.equal(tok.decode(withBos(a)), model.detokenize(asTokens(withBos(b))), `${label} decoded after BOS`);
      assert.equal(tok.decode(withBos(a), { renderSpecial: true }), model.detokenize(asTokens(withBos(b)), true), `${label} decoded with special tokens`);
    }
  });

  await t.test("special tokens in text are parsed only with parseSpecial, as llama.cpp's parse_special", () => {
    for (const s of ["<s>", "a<s>b", "</s> end", "x <s> y </s>", "<unk><s>", "no specials"]) {
      const a = tok.encode(s, { addSpecial: false, parseSpecial: true });
      const b = Array.from(model.tokenize(s, true));
      assert.deepEqual(a, b, `${JSON.stringify(s)}: ${firstDifference(a, b)}`);
    }
  });

  await t.test("every single token decodes as llama.cpp's detokenize of that token", () => {
    for (let id = 0; id < tok.vocabSize; id++) {
      assert.equal(tok.decode([id]), model.detokenize(asTokens([id])), `token ${id}`);
      assert.equal(tok.decode([id], { renderSpecial: true }), model.detokenize(asTokens([id]), true), `token ${id} special`);
      assert.equal(tok.isEog(id), model.isEogToken(id as Token), `token ${id} end of generation`);
    }
  });
});

test("tinystories-2m-hd64 and the ggml-org stories260K (same vocabulary) tokenize identically too", { skip: sharedSkip(sharedPaths.hd64, sharedPaths.stories260KGgmlOrg, sharedPaths.evalText) }, async (t) => {
  const text = readFileSync(sharedPaths.evalText, "utf8").slice(0, 20000);
  for (const path of [sharedPaths.hd64, sharedPaths.stories260KGgmlOrg]) {
    const model = await llamaModel(path);
    const tok = tokenizerFromFile(path);
    const bos = model.tokens.bos;
    assert.equal(tok.addBos, model.tokens.shouldPrependBosToken, `${path}: add BOS`);
    const body = Array.from(model.tokenize(text));
    const theirs = model.tokens.shouldPrependBosToken && bos !== null ? [bos, ...body] : body;
    const ours = tok.encode(text);
    t.diagnostic(`${path}: ${ours.length} tokens for ${text.length} chars`);
    assert.deepEqual(ours, theirs, `${path}: ${firstDifference(ours, theirs)}`);
    assert.equal(tok.decode(ours), model.detokenize(theirs), `${path}: decoded`);
  }
});
