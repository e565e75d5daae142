// q4_0 kernels: 32-value blocks of 18 bytes (fp16 d, 16 bytes of nibbles: element j low, element j + 16 high);
// value = (nibble − 8) × d; the dot partner is q8_0 (see src/formats/reference/q4_0.ts).
import { U8_15, U8_8, absMax32, axpyQuants16, dequantQuants16, dotI8x16, f32ToF16, highNibbles, hsumI32x4, loadF16, u8const } from "./common";
import { Q4_0 } from "./rowdot";
import { matmulRows } from "./matmul-rows";

const BYTES: usize = 18;
const Q8_0_BYTES: usize = 34;

/** min(15, trunc(x × id + 8.5)) for the 4 floats at p, as i32x4. */
// @ts-ignore: decorator
@inline function nibbles4(p: usize, id: v128): v128 {
  return i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(p), id), f32x4.splat(8.5))), i32x4.splat(15));
}

/** 16 nibbles (0..15) for the 16 floats at p, one per byte. */
// @ts-ignore: decorator
@inline function nibbles16(p: usize, id: v128): v128 {
  return i8x16.narrow_i16x8_u(
    i16x8.narrow_i32x4_u(nibbles4(p, id), nibbles4(p + 16, id)),
    i16x8.narrow_i32x4_u(nibbles4(p + 32, id), nibbles4(p + 48, id)),
  );
}

export function quantizeRow_q4_0(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const x = src + b * 128;
    const amax = absMax32(x);
    // the signed value of the first element reaching amax (+0 for an all-zero block, so d = −0 as in llama.cpp)
    let max: f32 = 0;
    if (amax > 0) {
      for (let j: usize = 0; j < 32; j++) {
        const v = load<f32>(x + (j << 2));
        if (Mathf.abs(v) == amax) { max = v; break; }
      }
    }
    const d: f32 = max / -8;
    const id = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    const block = dst + b * BYTES;
    store<u16>(block, <u16>f32ToF16(d));
    v128.store(block, v128.or(nibbles16(x, id), i8x16.shl(nibbles16(x + 64, id), 4)), 2);
  }
}

// @ts-ignore: decorator
@inline function lowNibblesCentered(q: v128): v128 {
  return i8x16.sub(v128.and(q, u8const(U8_15)), u8const(U8_8));
}
// @ts-ignore: decorator
@inline function highNibblesCentered(q: v128): v128 {
  return i8x16.sub(highNibbles(q), u8const(U8_8));
}

export function dequantizeRow_q4_0(src: usize, dst: usize, n: i32): void {
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const block = src + b * BYTES;
    const d = f32x4.splat(loadF16(block));
    const q = v128.load(block, 2);
    const o = dst + b * 128;
    dequantQuants16(o, lowNibblesCentered(q), d);
    dequantQuants16(o + 64, highNibblesCentered(q), d);
  }
}

/** Per block: integer Σ (nibble − 8) × q8 (i8 -> i16, i32x4.dot_i16x8_s), then float(float(sumi × d) × dx); f32 sum. */
export function dot_q4_0(row: usize, x: usize, n: i32): f32 {
  const nb = <usize>(n >> 5);
  let sum: f32 = 0;
  for (let b: usize = 0; b < nb; b++) {
    const a = row + b * BYTES;
    const c = x + b * Q8_0_BYTES;
    const q = v128.load(a, 2);
    const sumi = hsumI32x4(i32x4.add(dotI8x16(lowNibblesCentered(q), v128.load(c, 2)), dotI8x16(highNibblesCentered(q), v128.load(c, 18))));
    sum += (<f32>sumi * loadF16(a)) * loadF16(c);
  }
  return sum;
}

/** out[i] += w × ((nibble − 8) × d) for n values. */
export function axpy_q4_0(out: usize, w: f32, row: usize, n: i32): void {
  const weight = f32x4.splat(w);
  const nb = <usize>(n >> 5);
  for (let b: usize = 0; b < nb; b++) {
    const block = row + b * BYTES;
    const d = f32x4.splat(loadF16(block));
    const q = v128.load(block, 2);
    const o = out + b * 128;
    axpyQuants16(o, lowNibblesCentered(q), d, weight);
    axpyQuants16(o + 64, highNibblesCentered(q), d, weight);
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) q4_0, X is
 * (nTokens, xStride bytes) q8_0, out is (nTokens, outStride bytes) f32. Summation order: rowdot.ts.
 */
export function matmul_q4_0(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(Q4_0, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_q4_0 with one token, bit for bit. */
export function matvec_q4_0(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(Q4_0, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
