/**
 * Hadamard rotation: the WebAssembly transform (assembly/rotation.ts) against a scalar f32 reference in llama.cpp's
 * operation order (bit for bit), against the explicit matrix llama.cpp builds (ggml_gen_hadamard's recursion), its
 * self-inverse property, dot-product preservation, and llama.cpp's rules for when and how large it applies.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { getKvFormat } from "../../src/formats/table.js";
import { KV_FORMAT_NAMES } from "../../src/formats/types.js";
import { keyRotationSize, rotateRowReference, rotateRows, rotationEnabledByEnv, rotationSizes } from "../../src/kv/rotation.js";
import { defaultRuntime } from "../../src/runtime/wasm.js";
import { gaussianRow, seededRandom } from "../helpers/kv-reference.js";

const rt = defaultRuntime();

/** The matrix exactly as llama.cpp's ggml_gen_hadamard fills it: top-left 1/√n, then copy/negate doubling. */
function hadamardMatrix(n: number): Float64Array {
  const m = new Float64Array(n * n);
  m[0] = 1 / Math.sqrt(n);
  for (let s = 1; s < n; s *= 2) {
    for (let i = 0; i < s; i++) {
      for (let j = 0; j < s; j++) {
        const val = m[i * n + j];
        m[(i + s) * n + j] = val;
        m[i * n + j + s] = val;
        m[(i + s) * n + j + s] = -val;
      }
    }
  }
  return m;
}

function wasmRotate(src: Float32Array, n: number, inPlace: boolean): Float32Array {
  const srcPtr = rt.alloc(src.length * 4);
  const dstPtr = inPlace ? srcPtr : rt.alloc(src.length * 4);
  rt.f32(srcPtr, src.length).set(src);
  rotateRows(rt, srcPtr, dstPtr, n, src.length / n);
  const out = Float32Array.from(rt.f32(dstPtr, src.length));
  assert.deepEqual(Array.from(rt.f32(srcPtr, src.length)), Array.from(inPlace ? out : src), "source must be untouched out of place");
  rt.free(srcPtr);
  if (!inPlace) rt.free(dstPtr);
  return out;
}

test("WebAssembly transform equals the scalar f32 reference bit for bit (llama.cpp's operation order)", () => {
  const rand = seededRandom(11);
  for (const n of [4, 8, 16, 64, 128, 256]) {
    for (const inPlace of [false, true]) {
      const row = gaussianRow(rand, n * 3, 3);
      const got = wasmRotate(row, n, inPlace);
      const expected = Float32Array.from(row);
      rotateRowReference(expected, n);
      assert.deepEqual(Array.from(got), Array.from(expected), `n ${n} inPlace ${inPlace}`);
    }
  }
});

test("the transform is multiplication by llama.cpp's Hadamard matrix, chunk by chunk", () => {
  const rand = seededRandom(12);
  for (const n of [64, 128]) {
    const h = hadamardMatrix(n);
    const row = gaussianRow(rand, n * 2);
    const got = wasmRotate(row, n, false);
    for (let c = 0; c < 2; c++) {
      for (let i = 0; i < n; i++) {
        let expected = 0;
        for (let j = 0; j < n; j++) expected += h[i * n + j] * row[c * n + j];
        assert.ok(Math.abs(got[c * n + i] - expected) < 2e-6, `n ${n} chunk ${c} value ${i}: ${got[c * n + i]} vs ${expected}`);
      }
    }
    // symmetric and orthonormal: H·H = I
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let t = 0; t < n; t++) s += h[i * n + t] * h[t * n + j];
        assert.ok(Math.abs(s - (i === j ? 1 : 0)) < 1e-12);
      }
    }
  }
});

test("rotating twice gives the row back and dot products are preserved in f32", () => {
  const rand = seededRandom(13);
  for (const n of [64, 128]) {
    const a = gaussianRow(rand, n * 4);
    const b = gaussianRow(rand, n * 4);
    const back = wasmRotate(wasmRotate(a, n, false), n, true);
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(back[i] - a[i]) < 1e-5, `value ${i}: ${back[i]} vs ${a[i]}`);
    const ra = wasmRotate(a, n, false);
    const rb = wasmRotate(b, n, false);
    for (let c = 0; c < 4; c++) {
      let before = 0;
      let after = 0;
      let norms = 0;
      for (let i = c * n; i < (c + 1) * n; i++) {
        before += a[i] * b[i];
        after += ra[i] * rb[i];
        norms += a[i] * a[i] + b[i] * b[i];
      }
      assert.ok(Math.abs(after - before) < 1e-6 * norms, `chunk ${c}: ${after} vs ${before}`);
    }
  }
});

test("llama.cpp's rules: quantized side only, head_dim % 64 == 0, K size the largest power of two, V size 64", () => {
  const q8 = getKvFormat("q8_0");
  const f16 = getKvFormat("f16");
  assert.deepEqual(rotationSizes(true, 64, q8, q8), { k: 64, v: 64 });
  assert.deepEqual(rotationSizes(true, 128, q8, q8), { k: 128, v: 64 });
  assert.deepEqual(rotationSizes(true, 256, q8, f16), { k: 256, v: 0 });
  assert.deepEqual(rotationSizes(true, 192, f16, q8), { k: 0, v: 64 });
  assert.deepEqual(rotationSizes(true, 192, q8, q8), { k: 64, v: 64 });
  assert.deepEqual(rotationSizes(true, 8, q8, q8), { k: 0, v: 0 });
  assert.deepEqual(rotationSizes(true, 96, q8, q8), { k: 0, v: 0 });
  assert.deepEqual(rotationSizes(false, 64, q8, q8), { k: 0, v: 0 });
  for (const name of KV_FORMAT_NAMES) {
    const f = getKvFormat(name);
    const quantized = !["f32", "f16", "bf16"].includes(name);
    assert.deepEqual(rotationSizes(true, 64, f, f), quantized ? { k: 64, v: 64 } : { k: 0, v: 0 }, name);
  }
  assert.equal(keyRotationSize(64), 64);
  assert.equal(keyRotationSize(320), 64);
  assert.equal(keyRotationSize(512), 512);
});

test("LLAMA_ATTN_ROT_DISABLE is read as llama.cpp reads it (atoi, non-zero disables)", () => {
  assert.equal(rotationEnabledByEnv({}), true);
  assert.equal(rotationEnabledByEnv({ LLAMA_ATTN_ROT_DISABLE: "1" }), false);
  assert.equal(rotationEnabledByEnv({ LLAMA_ATTN_ROT_DISABLE: "0" }), true);
  assert.equal(rotationEnabledByEnv({ LLAMA_ATTN_ROT_DISABLE: "yes" }), true);
  assert.equal(rotationEnabledByEnv({ LLAMA_ATTN_ROT_DISABLE: "2" }), false);
});

test("rotateRows rejects sizes that are not powers of two", () => {
  assert.throws(() => rotateRows(rt, 0, 0, 48, 1), /power of two/);
  assert.throws(() => rotateRows(rt, 0, 0, 2, 1), /power of two/);
});
