/**
 * q3_K (GGML type 11): 256-value super-blocks of 110 bytes, 16 sub-blocks of 16 values:
 *   bytes 0..31    hmask: bit k of byte l is the third bit of value 32k + l
 *   bytes 32..95   qs, low two bits: byte 32c + l holds values 128c + l + 32k in bits 2k .. 2k + 1
 *   bytes 96..107  scales, 6 bits each (stored + 32): low nibbles of g < 8 in bytes 0..7, of g >= 8 in their high
 *                  nibbles; the top two bits of g in byte 8 + g % 4 at bit 2 × (g / 4)
 *   bytes 108..109 d, fp16 = 1 / iscale with iscale = −32 / (the sub-block scale of largest |scale|)
 * value = (d × (scale − 32)) × (q − 4), q in 0..7. Dot partner q8_K. Reference: ggml quantize_row_q3_K_ref
 * (make_q3_quants with 4 levels each side and the x²-weighted refinement).
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";
import { QK_K, clamp, fr, kquantDequantize, kquantDot, makeQ3Quants, nearestInt, pack2Bit, toI8, type KBlockLevels } from "./kquants.js";

const BYTES = 110;

/** The 6-bit scale of sub-block g (0..63, 32 meaning zero) from the 12 bytes at q[o ..]. */
function scaleQ3K(g: number, q: Uint8Array, o: number): number {
  const low = g < 8 ? q[o + g] & 15 : q[o + g - 8] >> 4;
  return low | (((q[o + 8 + (g & 3)] >> (2 * (g >> 2))) & 3) << 4);
}

/** Levels (−4 .. 3) and scales of the q3_K super-block at row[o ..]. */
export function decodeQ3K(row: Uint8Array, o: number, out: KBlockLevels): void {
  out.d = readF16(row, o + 108);
  out.dmin = 0;
  for (let g = 0; g < 16; g++) {
    out.scale[g] = scaleQ3K(g, row, o + 96) - 32;
    out.min[g] = 0;
  }
  for (let v = 0; v < QK_K; v++) {
    const low = (row[o + 32 + 32 * (v >> 7) + (v & 31)] >> (2 * ((v >> 5) & 3))) & 3;
    const high = (row[o + (v & 31)] >> (v >> 5)) & 1;
    out.q[v] = low - (high ? 0 : 4);
  }
}

export const q3_K: BlockFormat = {
  name: "q3_K",
  ggmlType: 11,
  blockSize: QK_K,
  bytesPerBlock: BYTES,
  dotPartner: "q8_K",
  kv: false,
  weight: true,
  kernels: kernelNames("q3_K"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q3_K", src.length, QK_K);
      checkBytes("q3_K", "dst", dst.length, nb * BYTES);
      const L = new Uint8Array(QK_K); // (256) levels 0..7
      const scales = new Float32Array(16); // (16 sub-blocks)
      for (let b = 0; b < nb; b++) {
        const x0 = b * QK_K;
        const o = b * BYTES;
        let maxScale = 0;
        let amax = 0;
        for (let g = 0; g < 16; g++) {
          scales[g] = makeQ3Quants(16, 4, src, x0 + 16 * g, L, 16 * g);
          const abs = Math.abs(scales[g]);
          if (abs > amax) {
            amax = abs;
            maxScale = scales[g];
          }
        }
        dst.fill(0, o, o + BYTES);
        const sb = o + 96;
        let d: number;
        if (maxScale !== 0) {
          const iscale = fr(-32 / maxScale);
          for (let g = 0; g < 16; g++) {
            const l = clamp(toI8(nearestInt(fr(iscale * scales[g]))), -32, 31) + 32;
            if (g < 8) dst[sb + g] = l & 15;
            else dst[sb + g - 8] |= (l & 15) << 4;
            dst[sb + 8 + (g & 3)] |= (l >> 4) << (2 * (g >> 2));
          }
          d = writeF16(dst, o + 108, fr(1 / iscale));
        } else {
          d = writeF16(dst, o + 108, 0);
        }
        for (let g = 0; g < 16; g++) {
          const dl = fr(d * (scaleQ3K(g, dst, sb) - 32));
          if (dl === 0) continue;
          for (let i = 16 * g; i < 16 * g + 16; i++) L[i] = clamp(nearestInt(fr(src[x0 + i] / dl)), -4, 3) + 4;
        }
        for (let v = 0; v < QK_K; v++) {
          if (L[v] > 3) {
            dst[o + (v & 31)] |= 1 << (v >> 5);
            L[v] -= 4;
          }
        }
        pack2Bit(L, dst, o + 32);
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      kquantDequantize("q3_K", src, dst, BYTES, false, decodeQ3K);
    },
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      return kquantDot("q3_K", row, x, n, BYTES, false, decodeQ3K);
    },
  },
};
