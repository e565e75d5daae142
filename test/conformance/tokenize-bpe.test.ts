/**
 * Byte-level BPE tokenization identical to llama.cpp (node-llama-cpp 3.21.1) for each supported pre-tokenizer.
 *
 * One vocabulary (merges learned here from the evaluation text and the hard strings, plus whole-word and special
 * tokens) is written into four tiny synthetic models that differ in their tokenizer metadata: `llama-bpe`, `qwen2`,
 * `gpt-2` (with a Phi-3 general.name, so special tokens swallow the whitespace after them) and no
 * `tokenizer.ggml.pre` at all ("default"); BOS/EOS keys are present in some and left to llama.cpp's defaults in others.
 *
 * node-llama-cpp's model.tokenize(text, special) is llama_tokenize with add_special = false and parse_special = special;
 * model.detokenize(ids, special) is llama_detokenize with remove_special = false and unparse_special = special.
 */
import { test, after, before } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { LlamaModel, Token } from "node-llama-cpp";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { closeLlama, llamaModel } from "../helpers/llamacpp.js";
import { BPE_HARD_STRINGS, WHOLE_WORD_PROBES, bpeMetadata, buildBpeVocab, SPECIAL_TOKENS, type BpeMetadataOptions, type BpeVocab } from "../helpers/bpe-vocab.js";
import { synthToFile } from "../../src/gguf/synth.js";
import { asTokens, firstDifference, tokenizerFromFile } from "../helpers/tokenizer-compare.js";
import { TokenType, type Tokenizer } from "../../src/tokenizer/index.js";

const skip = sharedSkip(sharedPaths.evalText);
const TEST_STRINGS = [...BPE_HARD_STRINGS, ...WHOLE_WORD_PROBES];

interface Variant {
  label: string;
  meta: BpeMetadataOptions;
  name?: string;
}

const VARIANTS: Variant[] = [
  { label: "llama-bpe", meta: { pre: "llama-bpe", bos: "<|begin_of_text|>", eos: "<|end_of_text|>" } },
  { label: "qwen2", meta: { pre: "qwen2", eos: "<|endoftext|>", addBos: false } },
  { label: "gpt-2", meta: { pre: "gpt-2", bos: "<|endoftext|>", eos: "<|endoftext|>", addBos: true, addEos: true }, name: "kvsplit phi-3 synth" },
  { label: "default (no tokenizer.ggml.pre)", meta: { bos: "<|begin_of_text|>", eos: "<|end_of_text|>" } },
];

let dir = "";
let evalText = "";
let vocab: BpeVocab;

before(() => {
  if (skip) return;
  dir = mkdtempSync(path.join(tmpdir(), "kvsplit-bpe-"));
  evalText = readFileSync(sharedPaths.evalText, "utf8");
  // The hard strings three times over, so that merges exist inside them (and across the splits being tested).
  vocab = buildBpeVocab([evalText.slice(0, 60_000), ...BPE_HARD_STRINGS, ...BPE_HARD_STRINGS, ...BPE_HARD_STRINGS], 2000);
});

after(async () => {
  await closeLlama();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** Mismatching hard strings for one (parseSpecial) setting, as readable lines. */
function hardStringMismatches(tok: Tokenizer, model: LlamaModel, parseSpecial: boolean): string[] {
  const bad: string[] = [];
  for (const s of TEST_STRINGS) {
    const ours = tok.encode(s, { addSpecial: false, parseSpecial });
    const theirs = Array.from(model.tokenize(s, parseSpecial));
    if (JSON.stringify(ours) !== JSON.stringify(theirs)) bad.push(`${JSON.stringify(s)}: ${firstDifference(ours, theirs)}`);
    for (const renderSpecial of [false, true]) {
      const ourText = tok.decode(theirs, { renderSpecial });
      const theirText = model.detokenize(asTokens(theirs), renderSpecial);
      if (ourText !== theirText) bad.push(`decode ${JSON.stringify(s)} (special ${renderSpecial}): ours ${JSON.stringify(ourText)} llama.cpp ${JSON.stringify(theirText)}`);
    }
  }
  return bad;
}

for (const variant of VARIANTS) {
  test(`BPE ${variant.label}: evaluation text, hard strings, special tokens and decoding match llama.cpp`, { skip }, async (t) => {
    const file = path.join(dir, `${variant.label.split(" ")[0]}.gguf`);
    synthToFile({ preset: { vocabSize: vocab.tokens.length }, tokenizer: bpeMetadata(vocab, variant.meta), name: variant.name }, file);
    const model = await llamaModel(file);
    const tok = tokenizerFromFile(file);

    await t.test("BOS/EOS ids, add_bos/add_eos and end-of-generation tokens as llama.cpp has them", () => {
      assert.equal(tok.addBos, model.tokens.shouldPrependBosToken, "add BOS");
      assert.equal(tok.addEos, model.tokens.shouldAppendEosToken, "add EOS");
      if (model.tokens.bos === null && tok.bosId >= 0) {
        // node-llama-cpp hides a BOS that is not a control token; llama.cpp's BPE default BOS is id 11.
        assert.equal(tok.bosId, 11, "default BOS id");
        assert.notEqual(vocab.types[11], TokenType.CONTROL);
      } else {
        assert.equal(tok.bosId, model.tokens.bos ?? -1, "BOS id");
      }
      assert.equal(tok.eosId, model.tokens.eos ?? -1, "EOS id");
      const specialIds = [...SPECIAL_TOKENS.map(([text]) => vocab.id(text)), 11];
      for (const id of specialIds) assert.equal(tok.isEog(id), model.isEogToken(id as Token), `isEog(${id} ${JSON.stringify(vocab.tokens[id])})`);
    });

    await t.test("the whole evaluation text: same ids (with add_special) and same detokenized text", () => {
      const started = performance.now();
      const ours = tok.encode(evalText);
      const ms = performance.now() - started;
      const body = Array.from(model.tokenize(evalText));
      const theirs = [
        ...(model.tokens.shouldPrependBosToken ? [model.tokens.bos!] : []),
        ...body,
        ...(model.tokens.shouldAppendEosToken ? [model.tokens.eos!] : []),
      ];
      t.diagnostic(`${variant.label}: ${evalText.length} chars → ${ours.length} tokens in ${ms.toFixed(0)} ms`);
      assert.ok(ours.length > 20_000, "many tokens");
      assert.deepEqual(ours, theirs, firstDifference(ours, theirs));
      assert.equal(tok.decode(body), model.detokenize(asTokens(body)));
      assert.equal(tok.decode(ours, { renderSpecial: true }), model.detokenize(asTokens(ours), true));
    });

    await t.test("hard strings, special tokens as text (parseSpecial off)", () => {
      const bad = hardStringMismatches(tok, model, false);
      t.diagnostic(`${variant.label}: ${TEST_STRINGS.length - bad.length}/${TEST_STRINGS.length} parseSpecial=false`);
      assert.deepEqual(bad, []);
    });

    await t.test("hard strings, special tokens parsed (parseSpecial on)", () => {
      const bad = hardStringMismatches(tok, model, true);
      assert.deepEqual(bad, []);
    });

    await t.test("every token decodes alone as llama.cpp renders it", () => {
      const bad: string[] = [];
      for (let id = 0; id < vocab.tokens.length; id++) {
        for (const special of [false, true]) {
          const ours = tok.decode([id], { renderSpecial: special });
          const theirs = model.detokenize(asTokens([id]), special);
          if (ours !== theirs) bad.push(`${id} ${JSON.stringify(vocab.tokens[id])} (special ${special}): ours ${JSON.stringify(ours)} llama.cpp ${JSON.stringify(theirs)}`);
        }
      }
      assert.deepEqual(bad.slice(0, 10), []);
    });
  });
}
