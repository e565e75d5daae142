/**
 * Perplexity checkpoints: a run stopped in the middle of a chunk and started again from its checkpoint gives the very
 * perplexity of an uninterrupted run (the same sums in the same order, the KV state of the chunk in progress), and
 * removes its files at the end; a checkpoint of another run is refused; the CLI refuses checkpoints of KLD runs.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import path from "node:path";
import { useModelDir } from "../helpers/model-dir.js";
import { runCli } from "../helpers/cli.js";
import { loadModel } from "../../src/model/model.js";
import { prepareEvalText, runPerplexity } from "../../src/eval/perplexity.js";
import { PerplexityCheckpoint, PerplexityCheckpointError, type CheckpointIdentity } from "../../src/eval/perplexity-checkpoint.js";
import { STORY_TEXT } from "../helpers/model-dir.js";

const md = useModelDir("ppl-checkpoint", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 256 }, 81);
const KV = { k: "q8_0", v: "q4_0" } as const;

test("a run stopped mid-chunk resumes from its checkpoint to the uninterrupted run's perplexity", () => {
  const model = loadModel(md.modelPath, { threads: 1 });
  try {
    const text = prepareEvalText(model, STORY_TEXT, 128, 3);
    assert.equal(text.chunks.length, 3);
    const whole = runPerplexity(model, text, { kv: KV });
    const file = path.join(md.dir, "run.ckpt");
    const identity: CheckpointIdentity = { textSha256: text.textSha256, ctx: 128, nChunks: 3, kv: "K8V4" };
    // stop the run once it is 80 tokens into the second chunk (checkpoints after every batch)
    const stop = new Error("stopped");
    assert.throws(
      () => runPerplexity(model, text, { kv: KV, checkpoint: new PerplexityCheckpoint(file, identity, 0), onTokens: (done) => { if (done >= 128 + 80) throw stop; } }),
      (e) => e === stop,
    );
    assert.ok(existsSync(file) && existsSync(`${file}.kvs`), "a checkpoint and its KV state were written");
    let resumedFrom = Infinity;
    const resumed = runPerplexity(model, text, { kv: KV, checkpoint: new PerplexityCheckpoint(file, identity, 0), onTokens: (done) => (resumedFrom = Math.min(resumedFrom, done)) });
    assert.ok(resumedFrom > 128, `the resumed run started inside the second chunk (first report at ${resumedFrom} tokens)`);
    assert.equal(resumed.ppl, whole.ppl);
    assert.equal(resumed.nTokens, whole.nTokens);
    assert.ok(!existsSync(file) && !existsSync(`${file}.kvs`), "the files are removed at the end");
    // a checkpoint of another run is refused
    assert.throws(() => runPerplexity(model, text, { kv: KV, checkpoint: new PerplexityCheckpoint(file, identity, 0), onTokens: (done) => { if (done >= 192) throw stop; } }), (e) => e === stop);
    assert.throws(
      () => runPerplexity(model, text, { kv: KV, checkpoint: new PerplexityCheckpoint(file, { ...identity, kv: "K4V4" }, 0) }),
      (e: Error) => e instanceof PerplexityCheckpointError && /written by another run \(kv/.test(e.message),
    );
  } finally {
    model.dispose();
  }
});

test("the CLI takes --checkpoint for perplexity runs only", () => {
  const r = runCli(md.dir, ["perplexity", "-m", md.modelPath, "-f", md.textPath, "-c", "64", "--checkpoint", "c.ckpt", "--kl-divergence-base", "b.kld"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--checkpoint covers perplexity runs only/);
  const ok = runCli(md.dir, ["perplexity", "-m", md.modelPath, "-f", md.textPath, "-c", "64", "--chunks", "2", "--checkpoint", "c.ckpt", "--json"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.ok(!existsSync(path.join(md.dir, "c.ckpt")));
});
