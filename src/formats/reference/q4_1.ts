/**
 * q4_1 (GGML type 3): blocks of 32 values, 20 bytes each:
 *   bytes 0..1  d, fp16 = (max − min) / 15
 *   bytes 2..3  m, fp16 = min
 *   bytes 4..19 qs: byte j holds element j (low nibble) and element j + 16 (high nibble),
 *               q = min(15, trunc((x − min) × (1/d) + 0.5)) in float, with the float (not fp16) min and d
 * value = q × fp16(d) + fp16(m). Dot partner q8_1. Reference: ggml quantize_row_q4_1_ref.
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";
import { readI8 } from "./q8_0.js";

const BLOCK = 32;
const BYTES = 20;
const Q8_1_BYTES = 36;
const FLT_MAX = 3.4028234663852886e38;

function nibble(x: number, min: number, id: number): number {
  return Math.min(15, Math.trunc(Math.fround(Math.fround(Math.fround(x - min) * id) + 0.5)));
}

export const q4_1: BlockFormat = {
  name: "q4_1",
  ggmlType: 3,
  blockSize: BLOCK,
  bytesPerBlock: BYTES,
  dotPartner: "q8_1",
  kv: true,
  weight: true,
  kernels: kernelNames("q4_1"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q4_1", src.length, BLOCK);
      checkBytes("q4_1", "dst", dst.length, nb * BYTES);
      for (let b = 0; b < nb; b++) {
        const x0 = b * BLOCK;
        let min = FLT_MAX;
        let max = -FLT_MAX;
        for (let j = 0; j < BLOCK; j++) {
          const v = src[x0 + j];
          if (v < min) min = v;
          if (v > max) max = v;
        }
        const d = Math.fround(Math.fround(max - min) / 15);
        const id = d !== 0 ? Math.fround(1 / d) : 0;
        writeF16(dst, b * BYTES, d);
        writeF16(dst, b * BYTES + 2, min);
        for (let j = 0; j < BLOCK / 2; j++) {
          dst[b * BYTES + 4 + j] = nibble(src[x0 + j], min, id) | (nibble(src[x0 + j + 16], min, id) << 4);
        }
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      const nb = checkWholeBlocks("q4_1", dst.length, BLOCK);
      checkBytes("q4_1", "src", src.length, nb * BYTES);
      for (let b = 0; b < nb; b++) {
        const d = readF16(src, b * BYTES);
        const m = readF16(src, b * BYTES + 2);
        for (let j = 0; j < BLOCK / 2; j++) {
          const byte = src[b * BYTES + 4 + j];
          dst[b * BLOCK + j] = Math.fround((byte & 15) * d) + m;
          dst[b * BLOCK + j + 16] = Math.fround((byte >> 4) * d) + m;
        }
      }
    },
    /** ggml_vec_dot_q4_1_q8_1: per block float(float(dx × dy) × sumi + float(mx × sy)); blocks summed in double. */
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      const nb = checkWholeBlocks("q4_1", n, BLOCK);
      checkBytes("q4_1", "row", row.length, nb * BYTES);
      checkBytes("q4_1", "x (q8_1)", x.length, nb * Q8_1_BYTES);
      let sum = 0;
      for (let b = 0; b < nb; b++) {
        let sumi = 0;
        for (let j = 0; j < BLOCK / 2; j++) {
          const byte = row[b * BYTES + 4 + j];
          sumi += (byte & 15) * readI8(x, b * Q8_1_BYTES + 4 + j);
          sumi += (byte >> 4) * readI8(x, b * Q8_1_BYTES + 4 + j + 16);
        }
        const scaled = Math.fround(Math.fround(readF16(row, b * BYTES) * readF16(x, b * Q8_1_BYTES)) * sumi);
        const offset = Math.fround(readF16(row, b * BYTES + 2) * readF16(x, b * Q8_1_BYTES + 2));
        sum += Math.fround(scaled + offset);
      }
      return sum;
    },
  },
};
