/**
 * q5_K (GGML type 13): 256-value super-blocks of 176 bytes, 8 sub-blocks of 32 values:
 *   bytes 0..1    d, fp16 scale of the 6-bit sub-block scales
 *   bytes 2..3    dmin, fp16 scale of the 6-bit sub-block mins
 *   bytes 4..15   scales and mins, 6 bits each, packed as in q4_K
 *   bytes 16..47  qh: bit 2c of byte l is the fifth bit of value 64c + l, bit 2c + 1 that of value 64c + 32 + l
 *   bytes 48..175 qs: low four bits, byte 32c + l holding values 64c + l (low nibble) and 64c + 32 + l (high)
 * value = (d × sc) × q − dmin × m, q in 0..31. Dot partner q8_K. Reference: ggml quantize_row_q5_K_ref
 * (make_qkx2_quants with 31 levels, rmin −0.5, 15 steps).
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks } from "./scalar.js";
import { QK_K, decodeScalesMinsK4, kquantDequantize, kquantDot, quantizeScaleMinK4, type KBlockLevels } from "./kquants.js";

const BYTES = 176;

/** Levels, scales and mins of the q5_K super-block at row[o ..]. */
export function decodeQ5K(row: Uint8Array, o: number, out: KBlockLevels): void {
  decodeScalesMinsK4(row, o, out);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const byte = row[o + 48 + 32 * c + l];
      const high = row[o + 16 + l];
      out.q[64 * c + l] = (byte & 15) | (((high >> (2 * c)) & 1) << 4);
      out.q[64 * c + 32 + l] = (byte >> 4) | (((high >> (2 * c + 1)) & 1) << 4);
    }
  }
}

export const q5_K: BlockFormat = {
  name: "q5_K",
  ggmlType: 13,
  blockSize: QK_K,
  bytesPerBlock: BYTES,
  dotPartner: "q8_K",
  kv: false,
  weight: true,
  kernels: kernelNames("q5_K"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q5_K", src.length, QK_K);
      checkBytes("q5_K", "dst", dst.length, nb * BYTES);
      const L = new Uint8Array(QK_K); // (256) levels 0..31
      for (let b = 0; b < nb; b++) {
        const x0 = b * QK_K;
        const o = b * BYTES;
        quantizeScaleMinK4(src, x0, 31, -0.5, 15, L, dst, o); // header bytes 0..15 and the levels
        dst.fill(0, o + 16, o + 48);
        for (let c = 0; c < 4; c++) {
          for (let l = 0; l < 32; l++) {
            let l1 = L[64 * c + l];
            let l2 = L[64 * c + 32 + l];
            if (l1 > 15) {
              l1 -= 16;
              dst[o + 16 + l] |= 1 << (2 * c);
            }
            if (l2 > 15) {
              l2 -= 16;
              dst[o + 16 + l] |= 2 << (2 * c);
            }
            dst[o + 48 + 32 * c + l] = l1 | (l2 << 4);
          }
        }
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      kquantDequantize("q5_K", src, dst, BYTES, true, decodeQ5K);
    },
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      return kquantDot("q5_K", row, x, n, BYTES, true, decodeQ5K);
    },
  },
};
