/**
 * Weight formats with a four-row layout (BlockFormat.tiled: q4_K): repacking in place writes the layout the kernel
 * file documents (checked against a re-implementation of that description here) and unpacking restores the bytes;
 * matvec_<fmt>_x4 and matmul_<fmt>_x4 over the tiles equal matvec_<fmt> over the rows bit for bit, in both kernel
 * builds, for random bytes (every 6-bit scale and min, every level); and a model loaded with its matrices tiled gives
 * the same logits, bit for bit, as the same model with the file's rows.
 */
import { describe, it, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FORMATS, getFormat, rowBytes } from "../../src/formats/table.js";
import type { BlockFormat } from "../../src/formats/types.js";
import { WasmRuntime, loadKernelModule, relaxedSimdSupported, type KernelVariant } from "../../src/runtime/wasm.js";
import { f32ToF16Bits } from "../../src/formats/reference/scalar.js";
import { seededRandom } from "../helpers/random.js";
import { synthToFile } from "../../src/gguf/synth.js";
import { loadModel, type Model } from "../../src/index.js";
import { promptThenGreedy } from "../helpers/greedy-logits.js";

const tiledFormats = FORMATS.filter((f) => f.tiled !== undefined);
const builds: KernelVariant[] = relaxedSimdSupported() ? ["plain", "relaxed"] : ["plain"];
const SENTINEL = -7777.25;

/** Where q4_K byte k (0..143) of row r's super-block goes in a tile super-block (assembly/formats/q4_K_x4.ts's layout). */
function documentedOffset(r: number, k: number): number {
  if (k < 2) return 2 * r + k; // d of rows 0..3
  if (k < 4) return 8 + 2 * r + (k - 2); // dmin
  if (k < 8) return 16 + 4 * (k - 4) + r; // header bytes 4-7 (scales 0-3): row r's byte j at 16 + 4j + r
  if (k < 12) { // bytes 8-11 (mins 0-3) in pairs: row r's byte 4 + 2h + i at 32 + 8h + 2r + i
    const j = k - 8;
    return 32 + 8 * (j >> 1) + 2 * r + (j & 1);
  }
  if (k < 16) return 48 + 4 * (k - 12) + r; // bytes 12-15: row r's byte 8 + j at 48 + 4j + r
  const q = k - 16; // nibble byte q = 32c + 4m + i at 64 + 128c + 16m + 4r + i
  const c = q >> 5;
  const m = (q & 31) >> 2;
  return 64 + 128 * c + 16 * m + 4 * r + (q & 3);
}

/** Random q4_K rows: random bytes everywhere (all scales, mins and levels), d and dmin finite halves of either sign. */
function randomRows(format: BlockFormat, nRows: number, cols: number, rand: () => number): Uint8Array {
  const rb = rowBytes(format, cols);
  const w = new Uint8Array(nRows * rb); // (nRows, rb)
  for (let i = 0; i < w.length; i++) w[i] = Math.floor(rand() * 256);
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < cols / 256; b++) {
      const o = r * rb + b * format.bytesPerBlock;
      for (const at of [0, 2]) {
        const h = f32ToF16Bits((rand() - 0.5) * 2 ** Math.floor(rand() * 16 - 12));
        w[o + at] = h & 255;
        w[o + at + 1] = h >> 8;
      }
    }
  }
  return w;
}

/** Random q8_K activations (f32 d, 256 i8, 16 i16 group sums that match the values). */
function randomActivations(nTokens: number, cols: number, rand: () => number): Uint8Array {
  const bytes = rowBytes(getFormat("q8_K"), cols);
  const x = new Uint8Array(nTokens * bytes); // (nTokens, bytes)
  const view = new DataView(x.buffer);
  for (let t = 0; t < nTokens; t++) {
    for (let b = 0; b < cols / 256; b++) {
      const o = t * bytes + b * 292;
      view.setFloat32(o, (rand() + 0.01) * 0.05, true);
      for (let g = 0; g < 16; g++) {
        let sum = 0;
        for (let i = 0; i < 16; i++) {
          const v = rand() < 0.1 ? (rand() < 0.5 ? -128 : 127) : Math.floor(rand() * 256) - 128;
          view.setInt8(o + 4 + 16 * g + i, v);
          sum += v;
        }
        view.setInt16(o + 260 + 2 * g, sum, true);
      }
    }
  }
  return x;
}

for (const format of tiledFormats) {
  describe(`${format.name}'s four-row layout (${format.tiled!.matvec}, ${format.tiled!.matmul})`, () => {
    for (const build of builds) {
      const rt = new WasmRuntime(undefined, { module: loadKernelModule(build) });
      const k = rt.k;
      const tiled = format.tiled!;

      it(`${build} build: repack writes the documented layout in place, unpack restores the rows`, () => {
        const rand = seededRandom(11);
        for (const [nRows, blocks] of [[4, 1], [8, 3], [12, 2]]) {
          const cols = 256 * blocks;
          const rb = rowBytes(format, cols);
          const rows = randomRows(format, nRows, cols, rand);
          const ptr = rt.alloc(rows.length);
          const scratch = rt.alloc(4 * rb);
          try {
            rt.u8(ptr, rows.length).set(rows);
            k[tiled.repack](ptr, nRows, cols, scratch);
            const tiles = rt.u8(ptr, rows.length).slice();
            for (let t = 0; t < nRows / 4; t++) {
              for (let b = 0; b < blocks; b++) {
                for (let r = 0; r < 4; r++) {
                  for (let byte = 0; byte < format.bytesPerBlock; byte++) {
                    const from = (4 * t + r) * rb + b * format.bytesPerBlock + byte;
                    const to = t * 4 * rb + b * 4 * format.bytesPerBlock + documentedOffset(r, byte);
                    assert.equal(tiles[to], rows[from], `rows ${nRows} cols ${cols}: tile ${t} block ${b} row ${r} byte ${byte}`);
                  }
                }
              }
            }
            k[tiled.unpack](ptr, nRows, cols, scratch);
            assert.deepEqual(rt.u8(ptr, rows.length).slice(), rows);
          } finally {
            rt.free(ptr);
            rt.free(scratch);
          }
        }
      });

      it(`${build} build: matvec and matmul over the tiles equal matvec over the rows bit for bit (1..9 tokens, row ranges, 1, 2, 9 super-blocks)`, () => {
        const rand = seededRandom(23);
        const nRows = 12;
        const maxTokens = 9;
        for (const blocks of [1, 2, 9]) {
          const cols = 256 * blocks;
          const rb = rowBytes(format, cols);
          const xBytes = rowBytes(getFormat("q8_K"), cols);
          const rows = randomRows(format, nRows, cols, rand);
          const x = randomActivations(maxTokens, cols, rand);
          const outStride = nRows * 4 + 12;
          const rowPtr = rt.alloc(rows.length);
          const tilePtr = rt.alloc(rows.length);
          const xPtr = rt.alloc(x.length);
          const scratch = rt.alloc(4 * rb);
          const outPtr = rt.alloc(maxTokens * outStride); // (maxTokens, outStride bytes)
          const vecPtr = rt.alloc(nRows * 4); // (nRows)
          try {
            rt.u8(rowPtr, rows.length).set(rows);
            rt.u8(tilePtr, rows.length).set(rows);
            k[tiled.repack](tilePtr, nRows, cols, scratch);
            rt.u8(xPtr, x.length).set(x);
            for (const [rowStart, rowEnd] of [[0, nRows], [4, 8], [8, 12], [4, 4]]) {
              for (const nTokens of [1, 2, 3, 4, 5, 8, 9]) {
                rt.f32(outPtr, (maxTokens * outStride) / 4).fill(SENTINEL);
                if (nTokens === 1) k[tiled.matvec](tilePtr, xPtr, outPtr, rowStart, rowEnd, cols);
                else k[tiled.matmul](tilePtr, xPtr, outPtr, rowStart, rowEnd, cols, nTokens, xBytes, outStride);
                const out = rt.f32(outPtr, (maxTokens * outStride) / 4).slice();
                for (let t = 0; t < maxTokens; t++) {
                  rt.f32(vecPtr, nRows).fill(SENTINEL);
                  if (t < nTokens) k[format.kernels.matvec](rowPtr, xPtr + t * xBytes, vecPtr, rowStart, rowEnd, cols);
                  const want = rt.f32(vecPtr, nRows).slice();
                  for (let r = 0; r < outStride / 4; r++) {
                    const expected = r < nRows ? want[r] : SENTINEL;
                    const got = out[(t * outStride) / 4 + r];
                    assert.ok(Object.is(got, expected), `cols ${cols} rows [${rowStart},${rowEnd}) tokens ${nTokens}: out[${t}][${r}] = ${got}, rows give ${expected}`);
                  }
                }
              }
            }
          } finally {
            for (const p of [rowPtr, tilePtr, xPtr, scratch, outPtr, vecPtr]) rt.free(p);
          }
        }
      });
    }
  });
}

describe("a model with tiled matrices", () => {
  let dir = "";
  let file = "";
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), "kvsplit-tiled-"));
    file = path.join(dir, "q4_K.gguf");
    synthToFile({ preset: { dim: 256, ffnDim: 512, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 512, contextLength: 512 }, type: "q4_K", seed: 3 }, file);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  /** Logits of a 70-token prompt (batched) and of 6 greedy tokens decoded one at a time. */
  function logits(model: Model): Float32Array[] {
    const session = model.createSession({ contextSize: 256, kv: { k: "q8_0", v: "q4_0" } });
    try {
      return promptThenGreedy(session, Array.from({ length: 70 }, (_, i) => (i * 29 + 5) % model.config.nVocab), 6, 3);
    } finally {
      session.dispose();
    }
  }

  for (const threads of [1, 2]) {
    test(`gives the logits of the file's rows, bit for bit (${threads} thread${threads > 1 ? "s" : ""}); the embedding stays in rows`, () => {
      const rowsModel = loadModel(file, { threads, tileWeights: false });
      const tiledModel = loadModel(file, { threads, tileWeights: true });
      try {
        const w = tiledModel.weights;
        assert.ok(w.layers.every((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown].every((m) => m.tiled)), "every q4_K layer matrix is tiled");
        assert.equal(w.tokenEmbd.tiled, false, "the embedding's rows are read one by one: not tiled");
        assert.ok(rowsModel.weights.layers.every((l) => !l.wq.tiled && !l.wDown.tiled));
        const want = logits(rowsModel);
        const got = logits(tiledModel);
        for (let i = 0; i < want.length; i++) {
          const bad = got[i].findIndex((x, j) => !Object.is(x, want[i][j]));
          assert.equal(bad, -1, `row set ${i}: logit ${bad} is ${got[i][bad]} tiled, ${want[i][bad]} in rows`);
        }
      } finally {
        rowsModel.dispose();
        tiledModel.dispose();
      }
    });
  }
});
