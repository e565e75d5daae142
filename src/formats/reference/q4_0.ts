/**
 * q4_0 (GGML type 2): blocks of 32 values, 18 bytes each:
 *   bytes 0..1  d, fp16 = max / -8 where max is the value of largest |x| (the first such, sign kept)
 *   bytes 2..17 qs: byte j holds element j in its low nibble and element j + 16 in its high nibble,
 *               q = min(15, trunc(x × (1/d) + 8.5)) in float
 * value = (q − 8) × fp16(d). An all-zero block stores d = −0 (0x8000). Reference: ggml quantize_row_q4_0_ref.
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";
import { readI8 } from "./q8_0.js";

const BLOCK = 32;
const BYTES = 18;
const Q8_0_BYTES = 34;

function nibble(x: number, id: number): number {
  return Math.min(15, Math.trunc(Math.fround(Math.fround(x * id) + 8.5)));
}

export const q4_0: BlockFormat = {
  name: "q4_0",
  ggmlType: 2,
  blockSize: BLOCK,
  bytesPerBlock: BYTES,
  dotPartner: "q8_0",
  kv: true,
  weight: true,
  kernels: kernelNames("q4_0"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q4_0", src.length, BLOCK);
      checkBytes("q4_0", "dst", dst.length, nb * BYTES);
      for (let b = 0; b < nb; b++) {
        const x0 = b * BLOCK;
        let amax = 0;
        let max = 0;
        for (let j = 0; j < BLOCK; j++) {
          if (amax < Math.abs(src[x0 + j])) {
            amax = Math.abs(src[x0 + j]);
            max = src[x0 + j];
          }
        }
        const d = max / -8; // exact in float: a power-of-two division (−0 when max is 0)
        const id = d !== 0 ? Math.fround(1 / d) : 0;
        writeF16(dst, b * BYTES, d);
        for (let j = 0; j < BLOCK / 2; j++) {
          dst[b * BYTES + 2 + j] = nibble(src[x0 + j], id) | (nibble(src[x0 + j + 16], id) << 4);
        }
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      const nb = checkWholeBlocks("q4_0", dst.length, BLOCK);
      checkBytes("q4_0", "src", src.length, nb * BYTES);
      for (let b = 0; b < nb; b++) {
        const d = readF16(src, b * BYTES);
        for (let j = 0; j < BLOCK / 2; j++) {
          const byte = src[b * BYTES + 2 + j];
          dst[b * BLOCK + j] = ((byte & 15) - 8) * d;
          dst[b * BLOCK + j + 16] = ((byte >> 4) - 8) * d;
        }
      }
    },
    /** ggml_vec_dot_q4_0_q8_0: per block float(float(sumi × dx) × dy); blocks summed in double. */
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      const nb = checkWholeBlocks("q4_0", n, BLOCK);
      checkBytes("q4_0", "row", row.length, nb * BYTES);
      checkBytes("q4_0", "x (q8_0)", x.length, nb * Q8_0_BYTES);
      let sum = 0;
      for (let b = 0; b < nb; b++) {
        let sumi = 0;
        for (let j = 0; j < BLOCK / 2; j++) {
          const byte = row[b * BYTES + 2 + j];
          sumi += ((byte & 15) - 8) * readI8(x, b * Q8_0_BYTES + 2 + j);
          sumi += ((byte >> 4) - 8) * readI8(x, b * Q8_0_BYTES + 2 + j + 16);
        }
        sum += Math.fround(Math.fround(sumi * readF16(row, b * BYTES)) * readF16(x, b * Q8_0_BYTES));
      }
      return sum;
    },
  },
};
