// q4_1 kernels: 32-value blocks of 20 bytes (fp16 d, fp16 m, 16 bytes of nibbles: element j low, element j + 16 high);
// value = nibble × d + m; the dot partner is q8_1 (see src/formats/reference/q4_1.ts).
import { U8_15, axpyQuants16Min, dequantQuants16Min, dotI8x16, f32ToF16, highNibbles, hsumI32x4, loadF16, u8const } from "./common";
import { Q4_1 } from "./rowdot";
import { matmulRows } from "./matmul-rows";

const BYTES: usize = 20;
const Q8_1_BYTES: usize = 36;

/** min(15, trunc((x − min) × id + 0.5)) for the 4 floats at p, as i32x4. */
// @ts-ignore: decorator
@inline function nibbles4(p: usize, min: v128, id: v128): v128 {
  const scaled = f32x4.mul(f32x4.sub(v128.load(p), min), id);
  return i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(scaled, f32x4.splat(0.5))), i32x4.splat(15));
}

// @ts-ignore: decorator
@inline function nibbles16(p: usize, min: v128, id: v128): v128 {
  return i8x16.narrow_i16x8_u(
    i16x8.narrow_i32x4_u(nibbles4(p, min, id), nibbles4(p + 16, min, id)),
    i16x8.narrow_i32x4_u(nibbles4(p + 32, min, id), nibbles4(p + 48, min, id)),
  );
}

export function quantizeRow_q4_1(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const x = src + b * 128;
    let lo = v128.load(x);
    let hi = lo;
    for (let k: usize = 16; k < 128; k += 16) {
      const v = v128.load(x + k);
      lo = f32x4.min(lo, v);
      hi = f32x4.max(hi, v);
    }
    const min = Mathf.min(Mathf.min(f32x4.extract_lane(lo, 0), f32x4.extract_lane(lo, 1)), Mathf.min(f32x4.extract_lane(lo, 2), f32x4.extract_lane(lo, 3)));
    const max = Mathf.max(Mathf.max(f32x4.extract_lane(hi, 0), f32x4.extract_lane(hi, 1)), Mathf.max(f32x4.extract_lane(hi, 2), f32x4.extract_lane(hi, 3)));
    const d: f32 = (max - min) / 15;
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    const minV = f32x4.splat(min);
    const block = dst + b * BYTES;
    store<u16>(block, <u16>f32ToF16(d));
    store<u16>(block, <u16>f32ToF16(min), 2);
    v128.store(block, v128.or(nibbles16(x, minV, id), i8x16.shl(nibbles16(x + 64, minV, id), 4)), 4);
  }
}

export function dequantizeRow_q4_1(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const block = src + b * BYTES;
    const d = f32x4.splat(loadF16(block));
    const m = f32x4.splat(loadF16(block + 2));
    const q = v128.load(block, 4);
    const o = dst + b * 128;
    dequantQuants16Min(o, v128.and(q, u8const(U8_15)), d, m);
    dequantQuants16Min(o + 64, highNibbles(q), d, m);
  }
}

/** Per block: float(float(d × dx) × sumi + float(m × sx)) with sumi = Σ nibble × q8 (i8 -> i16 dots); f32 sum. */
export function dot_q4_1(row: usize, x: usize, n: i32): f32 {
  const nb = <usize>(n >> 5);
  let sum: f32 = 0;
  for (let b: usize = 0; b < nb; b++) {
    const a = row + b * BYTES;
    const c = x + b * Q8_1_BYTES;
    const q = v128.load(a, 4);
    const sumi = hsumI32x4(i32x4.add(dotI8x16(v128.and(q, u8const(U8_15)), v128.load(c, 4)), dotI8x16(highNibbles(q), v128.load(c, 20))));
    sum += (loadF16(a) * loadF16(c)) * <f32>sumi + loadF16(a + 2) * loadF16(c + 2);
  }
  return sum;
}

/** out[i] += w × (nibble × d + m) for n values. */
export function axpy_q4_1(out: usize, w: f32, row: usize, n: i32): void {
  const weight = f32x4.splat(w);
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const block = row + b * BYTES;
    const d = f32x4.splat(loadF16(block));
    const m = f32x4.splat(loadF16(block + 2));
    const q = v128.load(block, 4);
    const o = out + b * 128;
    axpyQuants16Min(o, v128.and(q, u8const(U8_15)), d, m, weight);
    axpyQuants16Min(o + 64, highNibbles(q), d, m, weight);
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) q4_1, X is
 * (nTokens, xStride bytes) q8_1, out is (nTokens, outStride bytes) f32. Summation order: rowdot.ts.
 */
export function matmul_q4_1(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(Q4_1, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q4_1 with one token, bit for bit. */
export function matvec_q4_1(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(Q4_1, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
