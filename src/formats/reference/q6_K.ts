/**
 * q6_K (GGML type 14): 256-value super-blocks of 210 bytes, 16 sub-blocks of 16 values:
 *   bytes 0..127   ql, low four bits: for half c (values 128c ..), byte 64c + l holds value 128c + l (low nibble)
 *                  and 128c + 64 + l (high nibble), byte 64c + 32 + l values 128c + 32 + l and 128c + 96 + l
 *   bytes 128..191 qh, high two bits: byte 32c + l holds values 128c + l + 32k in bits 2k .. 2k + 1
 *   bytes 192..207 scales, 16 × int8
 *   bytes 208..209 d, fp16 = 1 / iscale with iscale = −128 / (the sub-block scale of largest |scale|)
 * value = (d × scale) × (q − 32), q in 0..63. Dot partner q8_K. Reference: ggml quantize_row_q6_K_ref
 * (make_qx_quants with 32 levels each side, weights x²).
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";
import { GROUP_MAX_EPS, QK_K, clamp, fr, kquantDequantize, kquantDot, makeQxQuants, nearestInt, toI8, type KBlockLevels } from "./kquants.js";

const BYTES = 210;

/** Levels (−32 .. 31) and scales of the q6_K super-block at row[o ..]. */
export function decodeQ6K(row: Uint8Array, o: number, out: KBlockLevels): void {
  out.d = readF16(row, o + 208);
  out.dmin = 0;
  for (let g = 0; g < 16; g++) {
    out.scale[g] = toI8(row[o + 192 + g]);
    out.min[g] = 0;
  }
  for (let c = 0; c < 2; c++) {
    for (let l = 0; l < 32; l++) {
      const a = row[o + 64 * c + l];
      const b = row[o + 64 * c + 32 + l];
      const h = row[o + 128 + 32 * c + l];
      out.q[128 * c + l] = ((a & 15) | ((h & 3) << 4)) - 32;
      out.q[128 * c + 32 + l] = ((b & 15) | (((h >> 2) & 3) << 4)) - 32;
      out.q[128 * c + 64 + l] = ((a >> 4) | (((h >> 4) & 3) << 4)) - 32;
      out.q[128 * c + 96 + l] = ((b >> 4) | (((h >> 6) & 3) << 4)) - 32;
    }
  }
}

export const q6_K: BlockFormat = {
  name: "q6_K",
  ggmlType: 14,
  blockSize: QK_K,
  bytesPerBlock: BYTES,
  dotPartner: "q8_K",
  kv: false,
  weight: true,
  kernels: kernelNames("q6_K"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q6_K", src.length, QK_K);
      checkBytes("q6_K", "dst", dst.length, nb * BYTES);
      const L = new Uint8Array(QK_K); // (256) levels 0..63
      const scales = new Float32Array(16); // (16 sub-blocks)
      for (let b = 0; b < nb; b++) {
        const x0 = b * QK_K;
        const o = b * BYTES;
        let maxScale = 0;
        let maxAbsScale = 0;
        for (let g = 0; g < 16; g++) {
          scales[g] = makeQxQuants(16, 32, src, x0 + 16 * g, L, 16 * g);
          const abs = Math.abs(scales[g]);
          if (abs > maxAbsScale) {
            maxAbsScale = abs;
            maxScale = scales[g];
          }
        }
        dst.fill(0, o, o + BYTES);
        if (maxAbsScale < GROUP_MAX_EPS) continue;
        const iscale = fr(-128 / maxScale);
        const d = writeF16(dst, o + 208, fr(1 / iscale));
        for (let g = 0; g < 16; g++) dst[o + 192 + g] = Math.min(127, nearestInt(fr(iscale * scales[g]))) & 0xff;
        for (let g = 0; g < 16; g++) {
          const dl = fr(d * toI8(dst[o + 192 + g]));
          if (dl === 0) continue;
          for (let i = 16 * g; i < 16 * g + 16; i++) L[i] = clamp(nearestInt(fr(src[x0 + i] / dl)), -32, 31) + 32;
        }
        for (let c = 0; c < 2; c++) {
          for (let l = 0; l < 32; l++) {
            const j = 128 * c + l;
            dst[o + 64 * c + l] = (L[j] & 15) | ((L[j + 64] & 15) << 4);
            dst[o + 64 * c + 32 + l] = (L[j + 32] & 15) | ((L[j + 96] & 15) << 4);
            dst[o + 128 + 32 * c + l] = ((L[j] >> 4) | ((L[j + 32] >> 4) << 2) | ((L[j + 64] >> 4) << 4) | ((L[j + 96] >> 4) << 6)) & 0xff;
          }
        }
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      kquantDequantize("q6_K", src, dst, BYTES, false, decodeQ6K);
    },
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      return kquantDot("q6_K", row, x, n, BYTES, false, decodeQ6K);
    },
  },
};
