/**
 * Weight formats with a four-row layout (BlockFormat.tiled: q4_K, q8_0): repacking in place writes the layout the
 * kernel file documents (checked against a re-implementation of that description here) and unpacking restores the
 * bytes; q8_0's split input is what its file describes; matvec_<fmt>_x4 and matmul_<fmt>_x4 (q8_0: and
 * matmulWide_q8_0_x4) over the tiles equal matvec_<fmt> over the rows bit for bit, in both kernel builds and both of
 * q8_0's layouts where the engine takes them (split input; offset weights), for random bytes (every 6-bit scale and
 * min, every level, every int8 weight including −128); and a model loaded with its matrices tiled gives the same
 * logits, bit for bit, as the same model with the file's rows.
 */
import { describe, it, test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { FORMATS, getFormat, rowBytes } from "../../src/formats/table.js";
import { TILE_GROUP_ROWS, type BlockFormat } from "../../src/formats/types.js";
import { WasmRuntime, loadKernelModule, relaxedSimdSupported, type KernelVariant } from "../../src/runtime/wasm.js";
import { f32ToF16Bits, readF16 } from "../../src/formats/reference/scalar.js";
import { seededRandom } from "../helpers/random.js";
import { wideRowBytes, wideScratchBytes } from "../../src/model/linear.js";
import { synthToFile } from "../../src/gguf/synth.js";
import { loadModel, type Model } from "../../src/index.js";
import { promptThenGreedy } from "../helpers/greedy-logits.js";

const builds: KernelVariant[] = relaxedSimdSupported() ? ["plain", "relaxed"] : ["plain"];
const SENTINEL = -7777.25;

/** A random finite half of either sign, 2^-12 .. 2^4 in magnitude (block and super-block scales). */
function randomScale(rand: () => number): number {
  return f32ToF16Bits((rand() - 0.5) * 2 ** Math.floor(rand() * 16 - 12));
}

/** What a test of one format's four-row layout needs: its documented byte order, random rows, and an input. */
interface Layout {
  readonly format: BlockFormat;
  /** Values per block (a row holds whole blocks). */
  readonly blockValues: number;
  /** Where byte k of row r's block goes in a tile block (the kernel file's layout, re-implemented here). */
  documentedOffset(r: number, k: number): number;
  /** Blocks per column segment of rows of nb blocks (nb: tiles stored one after another). */
  segmentBlocks(nb: number): number;
  /** What byte k of a row's block (value `byte`) is there: the same but for q8_0's offset weights (w + 128). */
  tiledByte(k: number, byte: number, offset: boolean): number;
  /** Random rows (random bytes everywhere, scales random finite halves). */
  randomRows(nRows: number, cols: number, rand: () => number): Uint8Array;
  /**
   * nTokens inputs written into rt's memory at rowsInput (as the row kernels take them) and tiledInput (as the tiled
   * ones do); returns their row bytes.
   */
  input(rt: WasmRuntime, nTokens: number, cols: number, rand: () => number, at: { rowsInput: number; tiledInput: number }, offset: boolean): { rowsBytes: number; tiledBytes: number };
  /** Bytes of one token's input row of `cols` values as the row kernels and as the tiled ones take it. */
  inputBytes(cols: number): { rowsBytes: number; tiledBytes: number };
}

/** q4_K (assembly/formats/q4_K_x4.ts): tiles of 576 bytes a super-block; the input is q8_K rows for both layouts. */
const q4K: Layout = {
  format: getFormat("q4_K"),
  blockValues: 256,
  segmentBlocks: (nb) => nb,
  documentedOffset(r, k) {
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
  },
  tiledByte(_k, byte) {
    return byte;
  },
  randomRows(nRows, cols, rand) {
    const rb = rowBytes(this.format, cols);
    const w = new Uint8Array(nRows * rb); // (nRows, rb)
    for (let i = 0; i < w.length; i++) w[i] = Math.floor(rand() * 256);
    for (let r = 0; r < nRows; r++) {
      for (let b = 0; b < cols / 256; b++) {
        for (const at of [0, 2]) setHalf(w, r * rb + b * 144 + at, randomScale(rand)); // d, dmin
      }
    }
    return w;
  },
  inputBytes(cols) {
    const bytes = rowBytes(getFormat("q8_K"), cols);
    return { rowsBytes: bytes, tiledBytes: bytes };
  },
  input(rt, nTokens, cols, rand, at) {
    // random q8_K activations (f32 d, 256 i8, 16 i16 group sums that match the values)
    const bytes = this.inputBytes(cols).rowsBytes;
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
    rt.u8(at.rowsInput, x.length).set(x);
    rt.u8(at.tiledInput, x.length).set(x);
    return this.inputBytes(cols);
  },
};

/**
 * q8_0 (assembly/formats/q8_0_x4.ts): tiles of 136 bytes a block; the input is the q8_0 quantization of f32
 * activations (quantizeRowsSplit_q8_0 writes it) for the rows, its split layout for the tiles, checked here against the
 * file's description: x⁺ = max(x, 0), x⁻ = x⁺ − x, d_x as f32 in 68 bytes a block; with offset weights x, −128 × Σ x as
 * i32, d_x in 40 bytes a block; token rows cols / 32 × 68 bytes apart in both. Rows of more than 96 blocks are cut
 * into ⌈nb / 96⌉ column segments of ⌈nb / segments⌉ blocks rounded up to a multiple of 4 (the last one shorter).
 */
const q80: Layout = {
  format: getFormat("q8_0"),
  blockValues: 32,
  segmentBlocks(nb) {
    const segments = Math.ceil(nb / 96);
    return Math.ceil(Math.ceil(nb / segments) / 4) * 4;
  },
  documentedOffset(r, k) {
    if (k < 2) return 2 * r + k; // d of rows 0..3
    const j = k - 2; // value j = 4m + i at 8 + 16m + 4r + i
    return 8 + 16 * (j >> 2) + 4 * r + (j & 3);
  },
  tiledByte(k, byte, offset) {
    return offset && k >= 2 ? byte ^ 0x80 : byte; // offset weights: each int8 value + 128 as u8
  },
  randomRows(nRows, cols, rand) {
    const rb = rowBytes(this.format, cols);
    const w = new Uint8Array(nRows * rb); // (nRows, rb): every int8 value, −128 included
    for (let i = 0; i < w.length; i++) w[i] = Math.floor(rand() * 256);
    for (let r = 0; r < nRows; r++) for (let b = 0; b < cols / 32; b++) setHalf(w, r * rb + b * 34, randomScale(rand));
    return w;
  },
  inputBytes(cols) {
    return { rowsBytes: rowBytes(this.format, cols), tiledBytes: (cols / 32) * this.format.tiled!.input!.bytesPerBlock };
  },
  input(rt, nTokens, cols, rand, at, offset) {
    const f = rt.alloc(nTokens * cols * 4); // (nTokens, cols) f32
    try {
      const floats = rt.f32(f, nTokens * cols);
      for (let i = 0; i < floats.length; i++) {
        const block = Math.floor(i / 32);
        // blocks of all scales, some all zeros and some of values so small that 1 / d overflows (q8_0 then holds −128)
        floats[i] = block % 7 === 3 ? 0 : block % 11 === 5 ? (rand() - 0.5) * 1e-39 : (rand() - 0.5) * 2 ** Math.floor(rand() * 12 - 6);
      }
      rt.k[this.format.tiled!.input!.quantizeRows](f, at.rowsInput, at.tiledInput, 0, nTokens, cols);
    } finally {
      rt.free(f);
    }
    const { rowsBytes, tiledBytes } = this.inputBytes(cols);
    const q8 = rt.u8(at.rowsInput, nTokens * rowsBytes);
    const split = rt.u8(at.tiledInput, nTokens * tiledBytes);
    const splitView = new DataView(split.buffer, split.byteOffset, split.byteLength);
    for (let t = 0; t < nTokens; t++) {
      for (let b = 0; b < cols / 32; b++) {
        const qb = t * rowsBytes + b * 34;
        const sb = t * tiledBytes + b * (offset ? 40 : 68);
        let sum = 0;
        for (let j = 0; j < 32; j++) {
          const x = (q8[qb + 2 + j] << 24) >> 24;
          sum += x;
          const plus = Math.max(x, 0);
          if (offset) assert.equal(split[sb + j], x & 255, `token ${t} block ${b}: x of value ${j}`);
          else {
            assert.equal(split[sb + j], plus, `token ${t} block ${b}: x⁺ of value ${j}`);
            assert.equal(split[sb + 32 + j], plus - x, `token ${t} block ${b}: x⁻ of value ${j}`);
          }
        }
        if (offset) {
          assert.equal(splitView.getInt32(sb + 32, true), (-128 * sum) | 0, `token ${t} block ${b}: −128 × Σ x`);
        }
        assert.ok(Object.is(splitView.getFloat32(sb + (offset ? 36 : 64), true), readF16(q8, qb)), `token ${t} block ${b}: d_x`);
      }
    }
    return { rowsBytes, tiledBytes };
  },
};

const layouts = [q4K, q80];

/**
 * Byte offset of tile t's block b in a matrix of nTiles tiles of nb blocks (tileBlock bytes each), as the kernel files
 * describe it: tiles in groups of TILE_GROUP_ROWS / 4, and within a group of g tiles, column segment by segment, each
 * segment holding its blocks of every tile of the group in turn.
 */
function tileBlockOffset(layout: Layout, t: number, b: number, nTiles: number, nb: number, tileBlock: number): number {
  const groupTiles = TILE_GROUP_ROWS / 4;
  const group = Math.floor(t / groupTiles);
  const g = Math.min(groupTiles, nTiles - group * groupTiles);
  const k = t - group * groupTiles;
  const S = layout.segmentBlocks(nb);
  const s0 = Math.floor(b / S) * S;
  const len = Math.min(S, nb - s0);
  return group * groupTiles * nb * tileBlock + (s0 * g + k * len + (b - s0)) * tileBlock;
}

function setHalf(bytes: Uint8Array, at: number, h: number): void {
  bytes[at] = h & 255;
  bytes[at + 1] = h >> 8;
}

/**
 * Random rows of `layout` (nRows × cols) placed in rt twice, once repacked into tiles, and nTokens inputs in both input
 * layouts; scratch: at least the repack's (a group's rows) and `scratchBytes`; tiledScratch: the tiled products'.
 * free() releases every range.
 */
function placeRowsAndTiles(rt: WasmRuntime, layout: Layout, nRows: number, cols: number, nTokens: number, rand: () => number, offset: boolean, scratchBytes: number) {
  const { rowsBytes, tiledBytes } = layout.inputBytes(cols);
  const rows = layout.randomRows(nRows, cols, rand);
  const rowPtr = rt.alloc(rows.length); // (nRows, row bytes) the file's rows
  const tilePtr = rt.alloc(rows.length); // the same, repacked
  const xRows = rt.alloc(nTokens * rowsBytes); // (nTokens, rowsBytes) input as the row kernels take it
  const xTiled = rt.alloc(nTokens * tiledBytes); // (nTokens, tiledBytes) input as the tiled ones take it
  const scratch = rt.alloc(Math.max(TILE_GROUP_ROWS * rowBytes(layout.format, cols), scratchBytes));
  const tiledScratch = rt.alloc(rt.k.tiledScratchBytes());
  rt.u8(rowPtr, rows.length).set(rows);
  rt.u8(tilePtr, rows.length).set(rows);
  rt.k[layout.format.tiled!.repack](tilePtr, nRows, cols, scratch);
  layout.input(rt, nTokens, cols, rand, { rowsInput: xRows, tiledInput: xTiled }, offset);
  const free = () => {
    for (const p of [rowPtr, tilePtr, xRows, xTiled, scratch, tiledScratch]) rt.free(p);
  };
  return { rowPtr, tilePtr, xRows, xTiled, rowsBytes, tiledBytes, scratch, tiledScratch, free };
}

/**
 * A runtime per kernel build and, for a format with two tiled layouts (TiledKernels.oneDot: q8_0), per layout the
 * build can take: the split input everywhere, offset weights where the relaxed build's probe holds (this engine's
 * relaxed dot reads its second operand as u8 without saturating), so both are tested on one machine.
 */
function layoutRuntimes(format: BlockFormat): { build: KernelVariant; offset: boolean; rt: WasmRuntime }[] {
  return builds.flatMap((build) => {
    const make = () => new WasmRuntime(undefined, { module: loadKernelModule(build) });
    const oneDot = format.tiled?.oneDot;
    if (oneDot === undefined) return [{ build, offset: false, rt: make() }];
    const probed = make();
    const offsetHere = Boolean(probed.k[oneDot]());
    const split = make();
    assert.equal(split.k.useOffsetWeights_q8_0_x4(0), 0, "the split input can always be asked for");
    if (build !== "relaxed") assert.equal(offsetHere, false, `the ${build} build never takes offset weights`);
    return offsetHere ? [{ build, offset: true, rt: probed }, { build, offset: false, rt: split }] : [{ build, offset: false, rt: split }];
  });
}

test("every format with a four-row layout is tested here", () => {
  assert.deepEqual(FORMATS.filter((f) => f.tiled !== undefined).map((f) => f.name).sort(), layouts.map((l) => l.format.name).sort());
});

for (const layout of layouts) {
  const format = layout.format;
  const B = layout.blockValues;
  describe(`${format.name}'s four-row layout (${format.tiled!.matvec}, ${format.tiled!.matmul})`, () => {
    for (const { build, offset, rt } of layoutRuntimes(format)) {
      const k = rt.k;
      const tiled = format.tiled!;
      const name = tiled.oneDot ? `${build} build, ${offset ? "offset weights" : "split input"}` : `${build} build`;

      it(`${name}: repack writes the documented layout in place, unpack restores the rows`, () => {
        const rand = seededRandom(11);
        // q8_0: 100 and 176 blocks are cut into column segments (52 + 48, 88 + 88); 36 and 44 rows end in a part group
        const shapes = B === 256 ? [[4, 1], [8, 3], [12, 2], [44, 2]] : [[4, 1], [8, 3], [12, 2], [44, 100], [36, 176], [64, 97]];
        for (const [nRows, blocks] of shapes) {
          const cols = B * blocks;
          const rb = rowBytes(format, cols);
          const rows = layout.randomRows(nRows, cols, rand);
          const ptr = rt.alloc(rows.length);
          const scratch = rt.alloc(TILE_GROUP_ROWS * rb);
          try {
            rt.u8(ptr, rows.length).set(rows);
            k[tiled.repack](ptr, nRows, cols, scratch);
            const tiles = rt.u8(ptr, rows.length).slice();
            for (let t = 0; t < nRows / 4; t++) {
              for (let b = 0; b < blocks; b++) {
                for (let r = 0; r < 4; r++) {
                  for (let byte = 0; byte < format.bytesPerBlock; byte++) {
                    const from = (4 * t + r) * rb + b * format.bytesPerBlock + byte;
                    const to = tileBlockOffset(layout, t, b, nRows / 4, blocks, 4 * format.bytesPerBlock) + layout.documentedOffset(r, byte);
                    assert.equal(tiles[to], layout.tiledByte(byte, rows[from], offset), `rows ${nRows} cols ${cols}: tile ${t} block ${b} row ${r} byte ${byte}`);
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

      const blockCounts = B === 256 ? [1, 2, 9] : [1, 2, 3, 5, 8, 13, 64, 97, 176];
      const tokenCounts = B === 256 ? [1, 2, 3, 4, 5, 8, 9] : [1, 2, 3, 4, 5, 8, 9, 67, 70];
      it(`${name}: matvec and matmul over the tiles equal matvec over the rows bit for bit (tokens ${tokenCounts.join(", ")}; row ranges; blocks ${blockCounts.join(", ")})`, () => {
        const rand = seededRandom(23);
        const maxTokens = tokenCounts[tokenCounts.length - 1];
        for (const blocks of blockCounts) {
          const cols = B * blocks;
          // rows in column segments: ranges on groups of tiles (a whole one, the part one at the end)
          const segmented = layout.segmentBlocks(blocks) < blocks;
          const nRows = segmented ? 44 : 12;
          const ranges = segmented ? [[0, 44], [0, 32], [32, 44], [32, 32]] : [[0, 12], [4, 8], [8, 12], [4, 4]];
          const { rowPtr, tilePtr, xRows, xTiled, rowsBytes, tiledBytes, tiledScratch, free } = placeRowsAndTiles(rt, layout, nRows, cols, maxTokens, rand, offset, 0);
          const outStride = nRows * 4 + 12;
          const outPtr = rt.alloc(maxTokens * outStride); // (maxTokens, outStride bytes)
          const vecPtr = rt.alloc(nRows * 4); // (nRows)
          try {
            for (const [rowStart, rowEnd] of ranges) {
              for (const nTokens of tokenCounts) {
                rt.f32(outPtr, (maxTokens * outStride) / 4).fill(SENTINEL);
                if (nTokens === 1) k[tiled.matvec](tilePtr, xTiled, outPtr, rowStart, rowEnd, cols, tiledScratch);
                else k[tiled.matmul](tilePtr, xTiled, outPtr, rowStart, rowEnd, cols, nTokens, tiledBytes, outStride, tiledScratch);
                const out = rt.f32(outPtr, (maxTokens * outStride) / 4).slice();
                for (let t = 0; t < maxTokens; t++) {
                  rt.f32(vecPtr, nRows).fill(SENTINEL);
                  if (t < nTokens) k[format.kernels.matvec](rowPtr, xRows + t * rowsBytes, vecPtr, rowStart, rowEnd, cols);
                  const want = rt.f32(vecPtr, nRows).slice();
                  for (let r = 0; r < outStride / 4; r++) {
                    const expected = r < nRows && r >= rowStart && r < rowEnd ? want[r] : SENTINEL;
                    const got = out[(t * outStride) / 4 + r];
                    assert.ok(Object.is(got, expected), `cols ${cols} rows [${rowStart},${rowEnd}) tokens ${nTokens}: out[${t}][${r}] = ${got}, rows give ${expected}`);
                  }
                }
              }
            }
          } finally {
            for (const p of [outPtr, vecPtr]) rt.free(p);
            free();
          }
        }
      });

      const wideKernel = `matmulWide_${format.name}_x4`;
      if (format.name === "q8_0") {
        it(`${name}: ${wideKernel} (the tiles laid back out as rows, then widened) equals matvec over the rows bit for bit`, () => {
          const rand = seededRandom(31);
          const nTokens = 5;
          for (const blocks of [1, 3, 8, 100]) {
            const nRows = blocks === 100 ? 44 : 8; // 100 blocks: column segments, a whole group of tiles and a part one
            const cols = B * blocks;
            const { rowPtr, tilePtr, xRows, rowsBytes, scratch, free } = placeRowsAndTiles(rt, layout, nRows, cols, nTokens, rand, offset, wideScratchBytes(cols));
            const xWide = rt.alloc(nTokens * wideRowBytes(cols)); // (nTokens, wide row bytes)
            const outPtr = rt.alloc(nTokens * nRows * 4); // (nTokens, nRows)
            const vecPtr = rt.alloc(nRows * 4); // (nRows)
            try {
              k.widenRows_q8_0(xRows, xWide, nTokens, cols);
              k[wideKernel](tilePtr, xWide, outPtr, 0, nRows, cols, nTokens, nRows * 4, scratch);
              const out = rt.f32(outPtr, nTokens * nRows).slice();
              for (let t = 0; t < nTokens; t++) {
                k[format.kernels.matvec](rowPtr, xRows + t * rowsBytes, vecPtr, 0, nRows, cols);
                const want = rt.f32(vecPtr, nRows).slice();
                for (let r = 0; r < nRows; r++) assert.ok(Object.is(out[t * nRows + r], want[r]), `cols ${cols}: out[${t}][${r}] = ${out[t * nRows + r]}, rows give ${want[r]}`);
              }
            } finally {
              for (const p of [xWide, outPtr, vecPtr]) rt.free(p);
              free();
            }
          }
        });
      }
    }
  });
}

for (const type of ["q4_K", "q8_0"] as const) {
  describe(`a model with tiled ${type} matrices`, () => {
    let dir = "";
    let file = "";
    before(() => {
      dir = mkdtempSync(path.join(tmpdir(), "kvsplit-tiled-"));
      file = path.join(dir, `${type}.gguf`);
      // ffnDim 3328: q8_0's ffn_down rows are 104 blocks, stored in column segments
      synthToFile({ preset: { dim: 256, ffnDim: 3328, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 512, contextLength: 512 }, type, seed: 3 }, file);
    });
    after(() => rmSync(dir, { recursive: true, force: true }));

    /**
     * Logits of a 70-token prompt (batches of 64 and 6 tokens: for q8_0 with the split input the widened-rows and the
     * tiled batch kernels, with offset weights the tiled ones for both) and of 6 greedy tokens decoded one at a time.
     */
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
        const rowsModel = loadModel(file, { threads, tileWeights: false, batchSize: 64 });
        const tiledModel = loadModel(file, { threads, tileWeights: true, batchSize: 64 });
        try {
          const w = tiledModel.weights;
          assert.ok(w.layers.every((l) => [l.wq, l.wk, l.wv, l.wo, l.wGate, l.wUp, l.wDown].every((m) => m.tiled)), `every ${type} layer matrix is tiled`);
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
}
