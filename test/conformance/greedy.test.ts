/** kvsplit's greedy decoding from BOS gives llama.cpp's tokens exactly (f16 cache in both, llama.cpp's default). */
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { closeLlama, llamaGreedy } from "../helpers/llamacpp.js";
import { argmaxRow } from "../../src/eval/logprobs.js";
import { loadModel } from "../../src/index.js";

const N_TOKENS = 200;
after(() => closeLlama());

function kvsplitGreedy(modelPath: string, nTokens: number): number[] {
  const model = loadModel(modelPath);
  const session = model.createSession({ contextSize: nTokens + 1, kv: { k: "f16", v: "f16" } });
  try {
    const bos = model.tokenizer.bosId;
    assert.equal(bos, 1, "stories260K's BOS is id 1");
    const tokens: number[] = [];
    let next = bos;
    for (let i = 0; i < nTokens; i++) {
      const logits = session.eval([next]); // (nVocab)
      next = argmaxRow(logits, 0, model.config.nVocab); // first index on ties, as llama.cpp's greedy sampler
      tokens.push(next);
    }
    return tokens;
  } finally {
    session.dispose();
    model.dispose();
  }
}

for (const [name, modelPath] of [
  ["stories260K.gguf", sharedPaths.stories260K],
  ["stories260K.ggml-org.gguf", sharedPaths.stories260KGgmlOrg],
] as const) {
  test(`${name}: ${N_TOKENS} greedy tokens from BOS identical to llama.cpp's`, { skip: sharedSkip(modelPath) }, async (t) => {
    const expected = await llamaGreedy(modelPath, N_TOKENS);
    if (expected.firstEogAt !== null) t.diagnostic(`llama.cpp emitted end-of-generation at ${expected.firstEogAt} and went on`);
    assert.deepEqual(expected.tokens.slice(0, 5), [403, 407, 261, 378, 432], "the oracle's known start");
    const actual = kvsplitGreedy(modelPath, N_TOKENS);
    const firstDiff = actual.findIndex((tok, i) => tok !== expected.tokens[i]);
    assert.equal(
      firstDiff,
      -1,
      `first difference at token ${firstDiff}: kvsplit ${actual.slice(firstDiff, firstDiff + 5)} vs llama.cpp ${expected.tokens.slice(firstDiff, firstDiff + 5)}`,
    );
    assert.equal(actual.length, N_TOKENS);
  });
}
