/**
 * The "single" kernel build (plain SIMD over an unshared memory: what a web page without cross-origin isolation runs,
 * on one thread): a model evaluated with it gives the plain build's logits bit for bit, and more than one thread over
 * it is refused by name. Each build is chosen once per process, so each runs in a child process.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { useModelDir } from "../helpers/model-dir.js";

const md = useModelDir("single", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 256 }, 21);
const wasmUrl = new URL("../../src/runtime/wasm.js", import.meta.url).href;
const modelUrl = new URL("../../src/model/model.js", import.meta.url).href;

/** Logits of a few tokens (K8V4 cache) under `variant` on `threads` threads, as hex of their bytes; or the error. */
function logitsIn(variant: string, threads: number): string {
  const script = `
    import { useKernelVariant } from ${JSON.stringify(wasmUrl)};
    import { loadModel } from ${JSON.stringify(modelUrl)};
    useKernelVariant(${JSON.stringify(variant)});
    try {
      const model = loadModel(${JSON.stringify(md.modelPath)}, { threads: ${threads} });
      const session = model.createSession({ contextSize: 64, kv: { k: "q8_0", v: "q4_0" } });
      const logits = session.evalAll([1, 5, 9, 42, 7, 3, 100, 250, 11]);
      process.stdout.write(Buffer.from(logits.buffer, logits.byteOffset, logits.byteLength).toString("hex"));
      model.dispose();
    } catch (e) {
      process.stdout.write("error: " + e.message);
    }`;
  return execFileSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", maxBuffer: 1 << 26 });
}

test("the single build over an unshared memory gives the plain build's logits, bit for bit", () => {
  const plain = logitsIn("plain", 1);
  assert.ok(plain.length > 1000 && !plain.startsWith("error"), plain.slice(0, 200));
  assert.equal(logitsIn("single", 1), plain);
});

test("more than one thread over the single build is refused by name", () => {
  assert.match(logitsIn("single", 2), /^error: ThreadPool needs a shared WebAssembly.Memory for more than one thread/);
});
