/**
 * q2_K (GGML type 10): 256-value super-blocks of 84 bytes, 16 sub-blocks of 16 values:
 *   bytes 0..15   scales: low nibble the 4-bit scale, high nibble the 4-bit min of sub-block g
 *   bytes 16..79  qs, 2-bit levels: byte 32c + l holds values 128c + l + 32k in bits 2k .. 2k + 1
 *   bytes 80..81  d, fp16 = largest fitted scale / 15
 *   bytes 82..83  dmin, fp16 = largest fitted −min / 15
 * value = (d × scale) × q − dmin × min, q in 0..3. Dot partner q8_K. Reference: ggml quantize_row_q2_K_ref
 * (make_qkx2_quants with 3 levels, weights |x|, rmin −0.5, 15 steps, mean absolute error).
 */
import type { BlockFormat } from "../types.js";
import { kernelNames } from "../types.js";
import { checkBytes, checkWholeBlocks, readF16, writeF16 } from "./scalar.js";
import { QK_K, clamp, fr, kquantDequantize, kquantDot, makeQkx2Quants, nearestInt, pack2Bit, type KBlockLevels } from "./kquants.js";

const BYTES = 84;

/** Levels (0..3), scales and mins of the q2_K super-block at row[o ..]. */
export function decodeQ2K(row: Uint8Array, o: number, out: KBlockLevels): void {
  out.d = readF16(row, o + 80);
  out.dmin = readF16(row, o + 82);
  for (let g = 0; g < 16; g++) {
    out.scale[g] = row[o + g] & 15;
    out.min[g] = row[o + g] >> 4;
  }
  for (let v = 0; v < QK_K; v++) {
    out.q[v] = (row[o + 16 + 32 * (v >> 7) + (v & 31)] >> (2 * ((v >> 5) & 3))) & 3;
  }
}

export const q2_K: BlockFormat = {
  name: "q2_K",
  ggmlType: 10,
  blockSize: QK_K,
  bytesPerBlock: BYTES,
  dotPartner: "q8_K",
  kv: false,
  weight: true,
  kernels: kernelNames("q2_K"),
  reference: {
    quantizeRow(src: Float32Array, dst: Uint8Array): void {
      const nb = checkWholeBlocks("q2_K", src.length, QK_K);
      checkBytes("q2_K", "dst", dst.length, nb * BYTES);
      const L = new Uint8Array(QK_K); // (256) levels 0..3
      const weights = new Float32Array(16); // (16)
      const scales = new Float32Array(16); // (16 sub-blocks)
      const mins = new Float32Array(16); // (16 sub-blocks)
      for (let b = 0; b < nb; b++) {
        const x0 = b * QK_K;
        const o = b * BYTES;
        let maxScale = 0;
        let maxMin = 0;
        for (let g = 0; g < 16; g++) {
          for (let l = 0; l < 16; l++) weights[l] = Math.abs(src[x0 + 16 * g + l]);
          const [scale, min] = makeQkx2Quants(16, 3, src, x0 + 16 * g, weights, L, 16 * g, -0.5, fr(0.1), 15, true);
          scales[g] = scale;
          mins[g] = min;
          if (scales[g] > maxScale) maxScale = scales[g];
          if (mins[g] > maxMin) maxMin = mins[g];
        }
        let d: number;
        if (maxScale > 0) {
          const iscale = fr(15 / maxScale);
          for (let g = 0; g < 16; g++) dst[o + g] = nearestInt(fr(iscale * scales[g])) & 0xff;
          d = writeF16(dst, o + 80, fr(maxScale / 15));
        } else {
          dst.fill(0, o, o + 16);
          d = writeF16(dst, o + 80, 0);
        }
        let dmin: number;
        if (maxMin > 0) {
          const iscale = fr(15 / maxMin);
          for (let g = 0; g < 16; g++) dst[o + g] |= (nearestInt(fr(iscale * mins[g])) << 4) & 0xff;
          dmin = writeF16(dst, o + 82, fr(maxMin / 15));
        } else {
          dmin = writeF16(dst, o + 82, 0);
        }
        for (let g = 0; g < 16; g++) {
          const dl = fr(d * (dst[o + g] & 15));
          if (dl === 0) continue;
          const dm = fr(dmin * (dst[o + g] >> 4));
          for (let i = 16 * g; i < 16 * g + 16; i++) L[i] = clamp(nearestInt(fr(fr(src[x0 + i] + dm) / dl)), 0, 3);
        }
        pack2Bit(L, dst, o + 16);
      }
    },
    dequantizeRow(src: Uint8Array, dst: Float32Array): void {
      kquantDequantize("q2_K", src, dst, BYTES, true, decodeQ2K);
    },
    dot(row: Uint8Array, x: Uint8Array, n: number): number {
      return kquantDot("q2_K", row, x, n, BYTES, true, decodeQ2K);
    },
  },
};
