/**
 * q4_K (GGML type 12): 256-value super-blocks of 144 bytes, 8 sub-blocks of 32 values:
 *   bytes 0..1    d, fp16 scale of the 6-bit sub-block scales (largest fitted scale / 63)
 *   bytes 2..3    dmin, fp16 scale of the 6-bit sub-block mins (largest fitted −min / 63)
 *   bytes 4..15   scales and mins, 6 bits each, packed as get_scale_min_k4 reads them (kquants.ts scaleMinK4)
 *   bytes 16..143 qs: byte 32c + l holds value 64c + l (low nibble) and 64c + 32 + l (high nibble)
 * value = (d × sc) × q − dmin × m. Dot partner q8_K. Reference: ggml quantize_row_q4_K_ref (make_qkx2_quants
 * with 15 levels, rmin −1, 20 steps, weights sqrt(mean x²) + |x|).
 */
import type { BlockFormat } from "../types.js";
import { kernelNames, tiledKernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks } from "./scalar.js";
import { QK_K, decodeScalesMinsK4, kquantDequantize, kquantDot, quantizeScaleMinK4, type KBlockLevels } from "./kquants.js";

const BYTES = 144;

/** Levels, scales and mins of the q4_K super-block at row[o ..]. */
export function decodeQ4K(row: Uint8Array, o: number, out: KBlockLevels): void {
  decodeScalesMinsK4(row, o, out);
  for (let c = 0; c < 4; c++) {
    for (let l = 0; l < 32; l++) {
      const byte = row[o + 16 + 32 * c + l];
      out.q[64 * c + l] = byte & 15;
      out.q[64 * c + 32 + l] = byte >> 4;
    }
  }
}

export const q4_K: BlockFormat = {
  name: "q4_K",
  ggmlType: 12,
  blockSize: QK_K,
  bytesPerBlock: BYTES,
  dotPartner: "q8_K",
  kv: false,
  weight: true,
  kernels: kernelNames("q4_K"),
  tiled: tiledKernelNames("q4_K"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q4_K", src.length, QK_K);
      checkBytes("q4_K", "dst", dst.length, nb * BYTES);
      const L = new Uint8Array(QK_K); // (256) levels 0..15
      for (let b = 0; b < nb; b++) {
        const x0 = b * QK_K;
        const o = b * BYTES;
        quantizeScaleMinK4(src, x0, 15, -1, 20, L, dst, o); // header bytes 0..15 and the levels
        for (let c = 0; c < 4; c++) {
          for (let l = 0; l < 32; l++) dst[o + 16 + 32 * c + l] = L[64 * c + l] | (L[64 * c + 32 + l] << 4);
        }
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      kquantDequantize("q4_K", src, dst, BYTES, true, decodeQ4K);
    },
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      return kquantDot("q4_K", row, x, n, BYTES, true, decodeQ4K);
    },
  },
};
