// iq4_nl kernels. Block (18 B): fp16 d | 16 B nibbles (byte j: level index of value j low, of value j+16 high).
// value = d × level[index], levels = ggml's kvalues_iq4nl. Dot partner: q8_0 blocks (34 B: fp16 d | 32 × int8).
// Byte offsets everywhere; n counts values and is a whole number of 32-value blocks.

import { U8_15, axpyQuants16, dequantQuants16, dotI8x16, f32ToF16, highNibbles, hsumF32x4, loadF16, lookup16, u8const } from "./common";
import { IQ4_NL } from "./rowdot";
import { matmulRows } from "./matmul-rows";

const IQ4_NL_BLOCK: i32 = 32;
const IQ4_NL_BYTES: usize = 18;
const Q8_0_BYTES: usize = 34;
/** ggml's kvalues_iq4nl, ascending: 16 int8 levels. */
const LEVELS: usize = memory.data<i8>([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);
/** Blocks whose largest magnitude is below this get d = 0 (ggml's GROUP_MAX_EPS). */
const GROUP_MAX_EPS: f32 = 1e-15;

// ---- block decoding ----

// @ts-ignore: decorator
@inline function levelTable(): v128 {
  return i8x16(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
}

/** Levels (int8) of values 0..15 of the block at `block`. */
// @ts-ignore: decorator
@inline function levelsLow(block: usize, table: v128): v128 {
  return lookup16(table, v128.and(v128.load(block, 2), u8const(U8_15)));
}

/** Levels (int8) of values 16..31 of the block at `block`. */
// @ts-ignore: decorator
@inline function levelsHigh(block: usize, table: v128): v128 {
  return lookup16(table, highNibbles(v128.load(block, 2)));
}

// @ts-ignore: decorator
@inline function level(i: i32): f32 {
  return <f32>load<i8>(LEVELS + <usize>i);
}

/** ggml's best_index_int8 over the 16 levels: clamp, binary search, a tie goes to the upper level. */
function nearestLevel(x: f32): i32 {
  if (x <= level(0)) return 0;
  if (x >= level(15)) return 15;
  let lo = 0;
  let hi = 15;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x < level(mid)) hi = mid;
    else lo = mid;
  }
  return x - level(hi - 1) < level(hi) - x ? hi - 1 : hi;
}

// ---- kernels ----

/**
 * Quantize n floats at src into iq4_nl blocks at dst, byte for byte as ggml's quantize_row_iq4_nl_ref:
 * indices from the trial scale max/−127, stored scale = Σ w·q·x / Σ w·q² with w = x². A block with every |x| < 1e-15
 * gets d = 0 and the previous block's nibbles (llama.cpp reuses its index buffer), zeros in a row's first block.
 */
export function quantizeRow_iq4_nl(src: usize, dst: usize, n: i32): void {
  const nBlocks = n / IQ4_NL_BLOCK;
  for (let b = 0; b < nBlocks; b++) {
    const x = src + (<usize>b << 7); // f32 (32)
    const out = dst + <usize>b * IQ4_NL_BYTES;
    let amax: f32 = 0;
    let max: f32 = 0;
    for (let j = 0; j < IQ4_NL_BLOCK; j++) {
      const v = load<f32>(x + (<usize>j << 2));
      if (abs<f32>(v) > amax) {
        amax = abs<f32>(v);
        max = v;
      }
    }
    if (amax < GROUP_MAX_EPS) {
      store<u16>(out, 0);
      if (b == 0) {
        v128.store(out, i8x16.splat(0), 2);
      } else {
        v128.store(out, v128.load(out - IQ4_NL_BYTES, 2), 2);
      }
      continue;
    }
    const id: f32 = <f32>1.0 / (max / level(0));
    let sumqx: f32 = 0;
    let sumq2: f32 = 0;
    for (let j = 0; j < IQ4_NL_BLOCK; j++) {
      // in value order: the float sums must round as llama.cpp's do
      const v = load<f32>(x + (<usize>j << 2));
      const l = nearestLevel(id * v);
      if (j < 16) store<u8>(out + 2 + <usize>j, <u8>l);
      else store<u8>(out + 2 + <usize>(j - 16), load<u8>(out + 2 + <usize>(j - 16)) | <u8>(l << 4));
      const q = level(l);
      const wq = v * v * q; // w = x², then (w·q)
      sumqx += wq * v;
      sumq2 += wq * q;
    }
    store<u16>(out, <u16>f32ToF16(sumq2 > 0 ? sumqx / sumq2 : 0));
  }
}

/** Decode n values of iq4_nl blocks at src into f32 at dst. */
export function dequantizeRow_iq4_nl(src: usize, dst: usize, n: i32): void {
  const nBlocks = n / IQ4_NL_BLOCK;
  const table = levelTable();
  for (let b = 0; b < nBlocks; b++) {
    const block = src + <usize>b * IQ4_NL_BYTES;
    const out = dst + (<usize>b << 7);
    const d = f32x4.splat(loadF16(block));
    dequantQuants16(out, levelsLow(block, table), d);
    dequantQuants16(out + 64, levelsHigh(block, table), d);
  }
}

// @ts-ignore: decorator
@inline function dotRow(row: usize, x: usize, nBlocks: i32): f32 {
  const table = levelTable();
  let acc = f32x4.splat(0);
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * IQ4_NL_BYTES;
    const y = x + <usize>b * Q8_0_BYTES;
    const sumi = i32x4.add(dotI8x16(levelsLow(block, table), v128.load(y, 2)), dotI8x16(levelsHigh(block, table), v128.load(y, 18)));
    const scale = loadF16(y) * loadF16(block);
    acc = f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(sumi), f32x4.splat(scale)));
  }
  return hsumF32x4(acc);
}

/** Dot of an iq4_nl row (n values) with x already quantized to q8_0 (ggml_vec_dot_iq4_nl_q8_0). */
export function dot_iq4_nl(row: usize, x: usize, n: i32): f32 {
  return dotRow(row, x, n / IQ4_NL_BLOCK);
}

/** out[i] += w × value[i] for the n values of an iq4_nl row (V accumulation). */
export function axpy_iq4_nl(out: usize, w: f32, row: usize, n: i32): void {
  const nBlocks = n / IQ4_NL_BLOCK;
  const table = levelTable();
  const w4 = f32x4.splat(w);
  for (let b = 0; b < nBlocks; b++) {
    const block = row + <usize>b * IQ4_NL_BYTES;
    const o = out + (<usize>b << 7);
    const d = f32x4.splat(loadF16(block));
    axpyQuants16(o, levelsLow(block, table), d, w4);
    axpyQuants16(o + 64, levelsHigh(block, table), d, w4);
  }
}

/**
 * out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W is (rows, cols) iq4_nl, X is
 * (nTokens, xStride bytes) q8_0, out is (nTokens, outStride bytes) f32. Summation order: rowdot.ts.
 */
export function matmul_iq4_nl(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  matmulRows(IQ4_NL, w, x, out, rowStart, rowEnd, cols, nTokens, xStride, outStride);
}

/** out[r] = dot(W[r], x) for r in [rowStart, rowEnd): matmul_iq4_nl with one token, bit for bit. */
export function matvec_iq4_nl(w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32): void {
  matmulRows(IQ4_NL, w, x, out, rowStart, rowEnd, cols, 1, 0, 0);
}
