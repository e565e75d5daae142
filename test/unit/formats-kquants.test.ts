/**
 * K-quant weight formats (q2_K, q3_K, q4_K, q5_K, q6_K) and their activation partner q8_K, against llama.cpp
 * (libggml-base.so / the CPU backend, see ggml-oracle.ts) and against the scalar references:
 *   1. layout facts: GGML type ids, 256-value blocks, bytes per block (also as ggml_get_type_traits reports them);
 *   2. the reference quantizers write llama.cpp's bytes (quantize_row_*_ref and ggml_quantize_chunk without an
 *      importance matrix, as llama-quantize does), on weight-like rows; dequantized values are llama.cpp's bit for bit;
 *   3. q8_K: bsums are the sums of each 16 quants; the WebAssembly quantizer writes the CPU backend's bytes;
 *   4. the WebAssembly dot / matvec / matmul against llama.cpp's CPU vec_dot (tight bound) and the scalar reference,
 *      for 1 and several super-blocks, row ranges, and 1 / 3 / 9 tokens; matmul equals matvec bit for bit.
 * formats.test.ts and matmul.test.ts run the generic table checks (error bounds, ties, overflow, axpy) on these too.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { getFormat, getKvFormat, rowBytes } from "../../src/formats/table.js";
import { defaultRuntime } from "../../src/runtime/wasm.js";
import { ggmlCpuVecDot, ggmlDequantize, ggmlDescribe, ggmlOracleSkip, ggmlQuantize } from "../helpers/ggml-oracle.js";
import { dotTolerance, firstMismatch, referenceDequantize, referenceQuantize } from "../helpers/format-reference.js";
import { seededRandom } from "../helpers/random.js";

const KQUANTS = ["q2_K", "q3_K", "q4_K", "q5_K", "q6_K"] as const;
const LAYOUT: Record<string, [ggmlType: number, bytesPerBlock: number]> = {
  q2_K: [10, 84],
  q3_K: [11, 110],
  q4_K: [12, 144],
  q5_K: [13, 176],
  q6_K: [14, 210],
  q8_K: [15, 292],
};

/** Weight-like rows: gaussian, a per-row scale, a few large outliers, a slight per-row offset. (nRows × cols) */
function weightRows(nRows: number, cols: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(nRows * cols); // (nRows, cols)
  for (let r = 0; r < nRows; r++) {
    const scale = 0.02 * 2 ** (rand() * 6 - 3);
    const offset = (rand() - 0.5) * scale;
    for (let i = 0; i < cols; i++) {
      const g = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
      out[r * cols + i] = offset + scale * (rand() < 0.01 ? 8 * g : g);
    }
  }
  return out;
}

describe("K-quant layout", () => {
  it("type ids, block sizes, bytes per block, dot partner, weight-only", () => {
    for (const [name, [type, bytes]] of Object.entries(LAYOUT)) {
      const f = getFormat(name);
      assert.deepEqual([f.ggmlType, f.blockSize, f.bytesPerBlock, f.dotPartner], [type, 256, bytes, "q8_K"], name);
      assert.equal(f.kv, false, `${name} is not a KV cache format`);
      assert.equal(f.weight, name !== "q8_K", `${name} weight flag`);
      assert.throws(() => getKvFormat(name), /KV cache format/);
    }
  });

  it("llama.cpp's type traits report the same names and sizes", { skip: ggmlOracleSkip() }, () => {
    for (const [name, [, bytes]] of Object.entries(LAYOUT)) {
      assert.deepEqual(ggmlDescribe(name), { name, blockSize: 256, bytesPerBlock: bytes });
    }
  });
});

describe("K-quant references agree with llama.cpp", { skip: ggmlOracleSkip() }, () => {
  for (const name of [...KQUANTS, "q8_K"] as const) {
    const format = getFormat(name);
    it(`${name}: bytes of quantize_row_${name}_ref and ggml_quantize_chunk; values of dequantize_row_${name}`, () => {
      for (const [nRows, cols] of [[1, 256], [5, 768], [3, 2048]] as const) {
        const x = weightRows(nRows, cols, 1000 * nRows + cols);
        const mine = new Uint8Array(nRows * rowBytes(format, cols)); // (nRows, rowBytes)
        for (let r = 0; r < nRows; r++) mine.set(referenceQuantize(format, x.subarray(r * cols, (r + 1) * cols)), r * rowBytes(format, cols));
        // q8_K is not a storage type: ggml_quantize_chunk rejects it
        for (const how of name === "q8_K" ? (["ref"] as const) : (["ref", "chunk"] as const)) {
          const theirs = ggmlQuantize(name, x, cols, how);
          const at = firstMismatch(mine, theirs);
          assert.equal(at, -1, `${name} ${nRows}×${cols} (${how}): byte ${at} is ${mine[at]}, llama.cpp ${theirs[at]}`);
        }
        const row0 = mine.subarray(0, rowBytes(format, cols));
        const values = referenceDequantize(format, row0, cols);
        const at = firstMismatch(values, ggmlDequantize(name, row0, cols));
        assert.equal(at, -1, `${name} ${cols}: dequantized value ${at} differs from llama.cpp's`);
      }
    });
  }

  it("q8_K: bsums are the sums of 16 quants; d × q decodes; the WebAssembly quantizer writes the CPU backend's bytes", () => {
    const rt = defaultRuntime();
    const f = getFormat("q8_K");
    const n = 1024;
    const x = weightRows(1, n, 77);
    x[300] = -5; // a negative largest value: d < 0
    const bytes = referenceQuantize(f, x);
    const view = new DataView(bytes.buffer);
    for (let b = 0; b < n / 256; b++) {
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let i = 0; i < 16; i++) sum += view.getInt8(b * 292 + 4 + 16 * g + i);
        assert.equal(view.getInt16(b * 292 + 260 + 2 * g, true), sum, `block ${b} group ${g}`);
      }
    }
    // iscale = −127 / max with the signed max: the block holding −5 gets d = 5 / 127 > 0 and q = −127 there
    assert.equal(view.getFloat32(292, true), Math.fround(1 / Math.fround(127 / 5)));
    assert.equal(view.getInt8(292 + 4 + (300 - 256)), -127);
    const src = rt.alloc(n * 4);
    const dst = rt.alloc(bytes.length);
    try {
      rt.f32(src, n).set(x);
      rt.k.quantizeRow_q8_K(src, dst, n);
      const cpu = ggmlQuantize("q8_K", x, n, "cpu");
      const at = firstMismatch(rt.u8(dst, bytes.length), cpu);
      assert.equal(at, -1, `wasm q8_K byte ${at} differs from the CPU backend's`);
    } finally {
      rt.free(src);
      rt.free(dst);
    }
  });
});

describe("K-quant WebAssembly kernels against llama.cpp's CPU vec_dot and the reference", () => {
  const rt = defaultRuntime();
  const q8K = getFormat("q8_K");

  for (const name of KQUANTS) {
    const format = getFormat(name);
    it(`${name}: dot, matvec (row ranges) and matmul (1 / 3 / 9 tokens, matvec bit for bit)`, { skip: ggmlOracleSkip() }, () => {
      for (const cols of [256, 1280]) {
        const nRows = 6;
        const maxTokens = 9;
        const wBytes = rowBytes(format, cols);
        const xBytes = rowBytes(q8K, cols);
        const wFloats = weightRows(nRows, cols, 31 * cols + 1);
        const w = new Uint8Array(nRows * wBytes); // (nRows, wBytes)
        for (let r = 0; r < nRows; r++) w.set(referenceQuantize(format, wFloats.subarray(r * cols, (r + 1) * cols)), r * wBytes);
        const acts = weightRows(maxTokens, cols, 97 * cols + 5).map((v) => v * 50); // activations, (maxTokens, cols)
        const x = new Uint8Array(maxTokens * xBytes); // (maxTokens, xBytes)
        for (let t = 0; t < maxTokens; t++) x.set(referenceQuantize(q8K, acts.subarray(t * cols, (t + 1) * cols)), t * xBytes);

        // llama.cpp's vec_dot for every (row, token) pair
        const pairRows = new Uint8Array(nRows * maxTokens * wBytes); // (nRows × maxTokens, wBytes)
        const pairXs = new Uint8Array(nRows * maxTokens * xBytes); // (nRows × maxTokens, xBytes)
        for (let r = 0; r < nRows; r++) {
          for (let t = 0; t < maxTokens; t++) {
            pairRows.set(w.subarray(r * wBytes, (r + 1) * wBytes), (r * maxTokens + t) * wBytes);
            pairXs.set(x.subarray(t * xBytes, (t + 1) * xBytes), (r * maxTokens + t) * xBytes);
          }
        }
        const llama = ggmlCpuVecDot(name, pairRows, pairXs, cols, nRows * maxTokens); // (nRows, maxTokens)

        const wPtr = rt.alloc(w.length);
        const xPtr = rt.alloc(x.length);
        const outPtr = rt.alloc(maxTokens * nRows * 4); // (maxTokens, nRows)
        const vecPtr = rt.alloc(nRows * 4); // (nRows)
        try {
          rt.u8(wPtr, w.length).set(w);
          rt.u8(xPtr, x.length).set(x);
          for (let r = 0; r < nRows; r++) {
            const rowQ = w.subarray(r * wBytes, (r + 1) * wBytes);
            const xRow = x.subarray(0, xBytes);
            const tol = dotTolerance(format, cols, referenceDequantize(format, rowQ, cols), referenceDequantize(q8K, xRow, cols));
            const wasm = rt.k[format.kernels.dot](wPtr + r * wBytes, xPtr, cols) as number;
            const ref = format.reference.dot(rowQ, xRow, cols);
            assert.ok(Math.abs(wasm - llama[r * maxTokens]) <= tol, `${name} cols=${cols} row ${r}: wasm ${wasm} vs llama.cpp ${llama[r * maxTokens]}`);
            assert.ok(Math.abs(ref - llama[r * maxTokens]) <= tol, `${name} cols=${cols} row ${r}: reference ${ref} vs llama.cpp ${llama[r * maxTokens]}`);
          }
          for (const nTokens of [1, 3, 9]) {
            for (const [rowStart, rowEnd] of [[0, nRows], [2, 5], [5, 6]]) {
              const sentinel = -4242.5;
              rt.f32(outPtr, maxTokens * nRows).fill(sentinel);
              rt.k[format.kernels.matmul](wPtr, xPtr, outPtr, rowStart, rowEnd, cols, nTokens, xBytes, nRows * 4);
              const out = rt.f32(outPtr, maxTokens * nRows).slice();
              for (let t = 0; t < maxTokens; t++) {
                rt.f32(vecPtr, nRows).fill(sentinel);
                if (t < nTokens) rt.k[format.kernels.matvec](wPtr, xPtr + t * xBytes, vecPtr, rowStart, rowEnd, cols);
                const vec = rt.f32(vecPtr, nRows);
                for (let r = 0; r < nRows; r++) {
                  const got = out[t * nRows + r];
                  const where = `${name} cols=${cols} tokens=${nTokens} rows [${rowStart},${rowEnd}) out[${t}][${r}]`;
                  if (t >= nTokens || r < rowStart || r >= rowEnd) {
                    assert.equal(got, sentinel, `${where} was written`);
                    continue;
                  }
                  assert.ok(Object.is(got, vec[r]), `${where} = ${got}, matvec ${vec[r]}`);
                  const rowQ = w.subarray(r * wBytes, (r + 1) * wBytes);
                  const xRow = x.subarray(t * xBytes, (t + 1) * xBytes);
                  const tol = dotTolerance(format, cols, referenceDequantize(format, rowQ, cols), referenceDequantize(q8K, xRow, cols));
                  assert.ok(Math.abs(got - llama[r * maxTokens + t]) <= tol, `${where} = ${got}, llama.cpp ${llama[r * maxTokens + t]} (tol ${tol})`);
                }
              }
            }
          }
        } finally {
          rt.free(wPtr);
          rt.free(xPtr);
          rt.free(outPtr);
          rt.free(vecPtr);
        }
      }
    });
  }
});
