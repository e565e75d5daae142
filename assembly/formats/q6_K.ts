// q6_K kernels: 256-value super-blocks of 210 bytes (128 B low nibbles, 64 B high bit pairs, 16 × int8 scales, fp16 d);
// the dot partner is q8_K (see src/formats/reference/q6_K.ts). The quantizer is single-threaded (kquants.ts).
import { U8_15, dotLevelsAdd, f32ToF16, highNibbles, loadF16, lookup16, u8const } from "./common";
import {
  KQ_I16_0x30, KQ_I16_15, KQ_I16_3, KQ_Q6_SCALE_ORDER, KQ_U8_0x30, Q6_K, SCRATCH_L, SCRATCH_SCALES,
  axpyK, clampI, dequantizeK, kqconst, makeQxQuants, matmulK, matvecK, nearestInt, pairHalvesI32x4,
  pairSumsI32x4, rowDotK, settledK,
} from "./kquants";

const BYTES: usize = 210;

// ---- dot: the order of kquants.ts's file comment, per super-block ---------------------------------------------
// Stored levels u = level + 32 (0..63, as i16; relaxed build: as u8 in relaxed dots): isum = Σ_g scale_g ×
// Σ_{16 values} u × q8 − 32 × Σ_g scale_g × bsum_g, the same exact integer as Σ_g scale_g × Σ level × q8. Half n
// (values 128n ..) of a super-block reads ql bytes 64n + l (low nibble: value l, high: l + 64) and 64n + 32 + l
// (values l + 32, l + 96), and qh byte 32n + l (bit pairs 0-1, 2-3, 4-5, 6-7: values l, l + 32, l + 64, l + 96),
// l = 0..31.

/**
 * Σ u × q8 of the 16-value groups 8n + p, 8n + p + 2, 8n + p + 4, 8n + p + 6 (p = 0, 1: l in 16p .. 16p + 15) of half
 * n as one i32x4 in that order.
 */
// @ts-ignore: decorator
@inline function partSums(ql: usize, qh: usize, xq: usize, p: usize): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) {
    // u (0..63) of each group as u8x16, one relaxed dot per group
    const o = p << 4;
    const a = v128.load(ql + o); // (16) u8: low nibbles of group 8n + p, high nibbles of group 8n + p + 4
    const b = v128.load(ql + 32 + o); // groups 8n + p + 2, 8n + p + 6
    const h = v128.load(qh + o); // (16) u8: bit pairs 0-1, 2-3, 4-5, 6-7 of the four groups
    const zero = i32x4.splat(0);
    const low15 = u8const(U8_15);
    const top = kqconst(KQ_U8_0x30);
    const g0 = dotLevelsAdd(v128.load(xq + o), v128.or(v128.and(a, low15), v128.and(i16x8.shl(h, 4), top)), zero);
    const g1 = dotLevelsAdd(v128.load(xq + 32 + o), v128.or(v128.and(b, low15), v128.and(i16x8.shl(h, 2), top)), zero);
    const s01 = settledK(pairHalvesI32x4(g0, g1), xq);
    const g2 = dotLevelsAdd(v128.load(xq + 64 + o), v128.or(highNibbles(a), v128.and(h, top)), zero);
    const g3 = dotLevelsAdd(v128.load(xq + 96 + o), v128.or(highNibbles(b), v128.and(i16x8.shr_u(h, 2), top)), zero);
    return pairSumsI32x4(s01, pairHalvesI32x4(g2, g3));
  }
  const k = p << 1;
  const o0 = k << 3;
  const o1 = o0 + 8;
  const a0 = v128.load8x8_u(ql + o0);
  const b0 = v128.load8x8_u(ql + 32 + o0);
  const h0 = v128.load8x8_u(qh + o0);
  const a1 = v128.load8x8_u(ql + o1);
  const b1 = v128.load8x8_u(ql + 32 + o1);
  const h1 = v128.load8x8_u(qh + o1);
  const g0 = i32x4.add(
    i32x4.dot_i16x8_s(v128.or(v128.and(a0, kqconst(KQ_I16_15)), i16x8.shl(v128.and(h0, kqconst(KQ_I16_3)), 4)), v128.load8x8_s(xq + o0)),
    i32x4.dot_i16x8_s(v128.or(v128.and(a1, kqconst(KQ_I16_15)), i16x8.shl(v128.and(h1, kqconst(KQ_I16_3)), 4)), v128.load8x8_s(xq + o1)),
  );
  const g1 = i32x4.add(
    i32x4.dot_i16x8_s(v128.or(v128.and(b0, kqconst(KQ_I16_15)), v128.and(i16x8.shl(h0, 2), kqconst(KQ_I16_0x30))), v128.load8x8_s(xq + 32 + o0)),
    i32x4.dot_i16x8_s(v128.or(v128.and(b1, kqconst(KQ_I16_15)), v128.and(i16x8.shl(h1, 2), kqconst(KQ_I16_0x30))), v128.load8x8_s(xq + 32 + o1)),
  );
  const s01 = settledK(pairHalvesI32x4(g0, g1), xq);
  const g2 = i32x4.add(
    i32x4.dot_i16x8_s(v128.or(i16x8.shr_u(a0, 4), v128.and(h0, kqconst(KQ_I16_0x30))), v128.load8x8_s(xq + 64 + o0)),
    i32x4.dot_i16x8_s(v128.or(i16x8.shr_u(a1, 4), v128.and(h1, kqconst(KQ_I16_0x30))), v128.load8x8_s(xq + 64 + o1)),
  );
  const g3 = i32x4.add(
    i32x4.dot_i16x8_s(v128.or(i16x8.shr_u(b0, 4), v128.and(i16x8.shr_u(h0, 2), kqconst(KQ_I16_0x30))), v128.load8x8_s(xq + 96 + o0)),
    i32x4.dot_i16x8_s(v128.or(i16x8.shr_u(b1, 4), v128.and(i16x8.shr_u(h1, 2), kqconst(KQ_I16_0x30))), v128.load8x8_s(xq + 96 + o1)),
  );
  return pairSumsI32x4(s01, pairHalvesI32x4(g2, g3));
}

/** The integers of the super-block at wb against the q8_K block at xb (kquants.ts's intsOf; no mins). */
// @ts-ignore: decorator
@final class Q6KInts {
  // @ts-ignore: decorator
  @inline ints(wb: usize, xb: usize): v128 {
    const xq = xb + 4;
    const p00 = settledK(partSums(wb, wb + 128, xq, 0), xb);
    const p01 = settledK(partSums(wb, wb + 128, xq, 1), xb);
    const p10 = settledK(partSums(wb + 64, wb + 160, xq + 128, 0), xb);
    const p11 = settledK(partSums(wb + 64, wb + 160, xq + 128, 1), xb);
    const scales = v128.load(wb + 192);
    const ordered = lookup16(scales, kqconst(KQ_Q6_SCALE_ORDER)); // groups 0 2 4 6, 1 3 5 7, 8 10 12 14, 9 11 13 15
    const half0 = i16x8.extend_low_i8x16_s(ordered);
    const half1 = i16x8.extend_high_i8x16_s(ordered);
    const raw = i32x4.add(
      i32x4.add(i32x4.mul(p00, i32x4.extend_low_i16x8_s(half0)), i32x4.mul(p01, i32x4.extend_high_i16x8_s(half0))),
      i32x4.add(i32x4.mul(p10, i32x4.extend_low_i16x8_s(half1)), i32x4.mul(p11, i32x4.extend_high_i16x8_s(half1))),
    );
    const bsums = xb + 260;
    const offset = i32x4.add(
      i32x4.dot_i16x8_s(v128.load(bsums), i16x8.extend_low_i8x16_s(scales)),
      i32x4.dot_i16x8_s(v128.load(bsums, 16), i16x8.extend_high_i8x16_s(scales)),
    );
    return pairHalvesI32x4(i32x4.sub(raw, i32x4.shl(offset, 5)), i32x4.splat(0)); // isum = Σ raw − 32 × Σ offset
  }
}

const GROUP_MAX_EPS: f32 = 1e-15;

export function quantizeRow_q6_K(src: usize, dst: usize, n: i32): void {
  const nb = n >> 8;
  for (let b = 0; b < nb; b++) {
    const x = src + (<usize>b << 10);
    const o = dst + <usize>b * BYTES;
    let maxScale: f32 = 0;
    let maxAbsScale: f32 = 0;
    for (let g = 0; g < 16; g++) {
      const scale = makeQxQuants(16, 32, x + (<usize>g << 6), SCRATCH_L + (<usize>g << 4));
      store<f32>(SCRATCH_SCALES + (<usize>g << 2), scale);
      if (Mathf.abs(scale) > maxAbsScale) {
        maxAbsScale = Mathf.abs(scale);
        maxScale = scale;
      }
    }
    memory.fill(o, 0, BYTES);
    if (maxAbsScale < GROUP_MAX_EPS) continue;
    const iscale: f32 = <f32>-128.0 / maxScale;
    store<u16>(o + 208, <u16>f32ToF16(<f32>1.0 / iscale));
    const d = loadF16(o + 208);
    for (let g = 0; g < 16; g++) {
      let v = nearestInt(iscale * load<f32>(SCRATCH_SCALES + (<usize>g << 2)));
      if (v > 127) v = 127;
      store<u8>(o + 192 + <usize>g, <u8>v);
    }
    for (let g = 0; g < 16; g++) {
      const dl: f32 = d * <f32>load<i8>(o + 192 + <usize>g);
      if (dl == 0) continue;
      for (let i = 16 * g; i < 16 * g + 16; i++) {
        store<u8>(SCRATCH_L + <usize>i, <u8>(clampI(nearestInt(load<f32>(x + (<usize>i << 2)) / dl), -32, 31) + 32));
      }
    }
    for (let c = 0; c < 2; c++) {
      for (let l = 0; l < 32; l++) {
        const p = SCRATCH_L + <usize>(128 * c + l);
        const a = <u32>load<u8>(p);
        const b2 = <u32>load<u8>(p + 32);
        const c3 = <u32>load<u8>(p + 64);
        const d4 = <u32>load<u8>(p + 96);
        store<u8>(o + <usize>(64 * c + l), <u8>((a & 15) | ((c3 & 15) << 4)));
        store<u8>(o + <usize>(64 * c + 32 + l), <u8>((b2 & 15) | ((d4 & 15) << 4)));
        store<u8>(o + 128 + <usize>(32 * c + l), <u8>((a >> 4) | ((b2 >> 4) << 2) | ((c3 >> 4) << 4) | ((d4 >> 4) << 6)));
      }
    }
  }
}

export function dequantizeRow_q6_K(src: usize, dst: usize, n: i32): void {
  dequantizeK(Q6_K, src, dst, n);
}

/** Σ over super-blocks of (d_x × d) × isum [− (d_x × dmin) × summs], in f32 (kquants.ts). */
export function dot_q6_K(row: usize, x: usize, n: i32): f32 {
  return rowDotK<Q6KInts>(Q6_K, row, x, n >> 8);
}

/** out[i] += w × value[i]; the value is rounded to f32 first, as dequantizeRow does. */
export function axpy_q6_K(out: usize, w: f32, row: usize, n: i32): void {
  axpyK(Q6_K, out, w, row, n);
}

/** out[t][r] = dot(W[r], X[t]): W (rows, cols) q6_K, X (nTokens, xStride bytes) q8_K, out (nTokens, outStride bytes) f32. */
export function matmul_q6_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulK<Q6KInts>(Q6_K, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q6_K with one token, bit for bit (kquants.ts's matvecK). */
export function matvec_q6_K(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matvecK<Q6KInts>(Q6_K, w, x, out, rowStart, rowEnd, cols);
}
