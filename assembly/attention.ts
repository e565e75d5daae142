// Attention straight from the packed KV cache: scores from the K format's dot against packed K blocks, the weighted
// sum from the V format's axpy over packed V blocks. No f32 copy of the cache exists at any moment.
//
// Method (compared with llama.cpp's CPU flash attention, ggml-cpu ops.cpp ggml_compute_forward_flash_attn_ext_f16):
// - Copied: each query head is converted once to the K format's dot partner (q8_0 for q8_0/q5_0/q4_0/iq4_nl keys,
//   q8_1 for q5_1/q4_1, f16/bf16/f32 for those keys) and every score is that format's vec_dot, then × 1/sqrt(headDim).
//   So quantized keys see the same query rounding as in llama.cpp and KL divergences are comparable.
// - More precise: the softmax is two-pass (exact max, then exp and sum, in f32; exp is a SIMD polynomial within about
//   1e-7 relative of expf) instead of online, and V is always
//   accumulated in f32 (llama.cpp accumulates in f16 when V is f16).
// - Heads that do not start on a block boundary (headDim not a multiple of the block size, e.g. stories260K's
//   headDim 8 with 32-value blocks, which llama.cpp refuses): a head's K slice lies in a run of "covering" blocks of
//   the position's row. The query head is written at its offset into a zeroed f32 run as long as the covering blocks
//   and that run is converted to the dot partner, so the partner's scale comes from this head's values only and the
//   zeros cancel the other heads' values in the dot exactly (also the q8_1 sum term, which covers only this head).
//   For V, the covering blocks are accumulated with axpy into an f32 scratch run and the head's slice is copied out.
//   Aligned heads are the special case where the covering run is exactly the head's slice (no scratch detour).
import { quantizeRow_f32, dot_f32, axpy_f32 } from "./formats/f32";
import { quantizeRow_f16, dot_f16, axpy_f16 } from "./formats/f16";
import { quantizeRow_bf16, dot_bf16, axpy_bf16 } from "./formats/bf16";
import { quantizeRow_q8_0, dot_q8_0, axpy_q8_0 } from "./formats/q8_0";
import { quantizeRow_q8_1 } from "./formats/q8_1";
import { quantizeRow_q5_1, dot_q5_1, axpy_q5_1 } from "./formats/q5_1";
import { quantizeRow_q5_0, dot_q5_0, axpy_q5_0 } from "./formats/q5_0";
import { quantizeRow_q4_1, dot_q4_1, axpy_q4_1 } from "./formats/q4_1";
import { quantizeRow_q4_0, dot_q4_0, axpy_q4_0 } from "./formats/q4_0";
import { quantizeRow_iq4_nl, dot_iq4_nl, axpy_iq4_nl } from "./formats/iq4_nl";
import { fwht_f32 } from "./rotation";

// GGML type ids (ggml.h enum ggml_type), the same numbers as the format table's `ggmlType`.
const T_F32: i32 = 0;
const T_F16: i32 = 1;
const T_Q4_0: i32 = 2;
const T_Q4_1: i32 = 3;
const T_Q5_0: i32 = 6;
const T_Q5_1: i32 = 7;
const T_Q8_0: i32 = 8;
const T_Q8_1: i32 = 9;
const T_IQ4_NL: i32 = 20;
const T_BF16: i32 = 30;

/** Convert n f32 values into `type` (a KV format or a dot partner). Returns false for an unknown type. */
export function quantizeRow_byType(type: i32, src: usize, dst: usize, n: i32): bool {
  switch (type) {
    case T_F32: quantizeRow_f32(src, dst, n); return true;
    case T_F16: quantizeRow_f16(src, dst, n); return true;
    case T_BF16: quantizeRow_bf16(src, dst, n); return true;
    case T_Q8_0: quantizeRow_q8_0(src, dst, n); return true;
    case T_Q8_1: quantizeRow_q8_1(src, dst, n); return true;
    case T_Q5_1: quantizeRow_q5_1(src, dst, n); return true;
    case T_Q5_0: quantizeRow_q5_0(src, dst, n); return true;
    case T_Q4_1: quantizeRow_q4_1(src, dst, n); return true;
    case T_Q4_0: quantizeRow_q4_0(src, dst, n); return true;
    case T_IQ4_NL: quantizeRow_iq4_nl(src, dst, n); return true;
  }
  return false;
}

@inline
function dot_byType(type: i32, row: usize, x: usize, n: i32): f32 {
  switch (type) {
    case T_F32: return dot_f32(row, x, n);
    case T_F16: return dot_f16(row, x, n);
    case T_BF16: return dot_bf16(row, x, n);
    case T_Q8_0: return dot_q8_0(row, x, n);
    case T_Q5_1: return dot_q5_1(row, x, n);
    case T_Q5_0: return dot_q5_0(row, x, n);
    case T_Q4_1: return dot_q4_1(row, x, n);
    case T_Q4_0: return dot_q4_0(row, x, n);
    case T_IQ4_NL: return dot_iq4_nl(row, x, n);
  }
  return NaN;
}

@inline
function axpy_byType(type: i32, out: usize, w: f32, row: usize, n: i32): void {
  switch (type) {
    case T_F32: axpy_f32(out, w, row, n); break;
    case T_F16: axpy_f16(out, w, row, n); break;
    case T_BF16: axpy_bf16(out, w, row, n); break;
    case T_Q8_0: axpy_q8_0(out, w, row, n); break;
    case T_Q5_1: axpy_q5_1(out, w, row, n); break;
    case T_Q5_0: axpy_q5_0(out, w, row, n); break;
    case T_Q4_1: axpy_q4_1(out, w, row, n); break;
    case T_Q4_0: axpy_q4_0(out, w, row, n); break;
    case T_IQ4_NL: axpy_iq4_nl(out, w, row, n); break;
  }
}

// exp for x <= 0 (scores minus their maximum), 4 lanes at a time: Cody–Waite reduction x = n·ln2 + r, |r| <= ln2/2,
// e^r by Cephes expf's degree-7 polynomial (relative error about 1e-7), times 2^n built in the exponent bits.
// Below -87 the result is 0 (it would be under 2^-125, nothing next to the maximum's 1).
const EXP_LOG2E: f32 = 1.44269504088896341;
const EXP_C1: f32 = 0.693359375;
const EXP_C2: f32 = -2.12194440e-4;
const EXP_P0: f32 = 1.9875691500e-4;
const EXP_P1: f32 = 1.3981999507e-3;
const EXP_P2: f32 = 8.3334519073e-3;
const EXP_P3: f32 = 4.1665795894e-2;
const EXP_P4: f32 = 1.6666665459e-1;
const EXP_P5: f32 = 5.0000001201e-1;
const EXP_MIN: f32 = -87.0;

@inline
function expNonPositive_f32x4(x: v128): v128 {
  const n = f32x4.nearest(f32x4.mul(x, f32x4.splat(EXP_LOG2E)));
  let r = f32x4.sub(x, f32x4.mul(n, f32x4.splat(EXP_C1)));
  r = f32x4.sub(r, f32x4.mul(n, f32x4.splat(EXP_C2)));
  let y = f32x4.add(f32x4.mul(f32x4.splat(EXP_P0), r), f32x4.splat(EXP_P1));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(EXP_P2));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(EXP_P3));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(EXP_P4));
  y = f32x4.add(f32x4.mul(y, r), f32x4.splat(EXP_P5));
  y = f32x4.add(f32x4.add(f32x4.mul(y, f32x4.mul(r, r)), r), f32x4.splat(1));
  const keep = f32x4.ge(x, f32x4.splat(EXP_MIN));
  const nClamped = f32x4.max(n, f32x4.splat(-126));
  const pow2 = i32x4.shl(i32x4.add(i32x4.trunc_sat_f32x4_s(nClamped), i32x4.splat(127)), 23);
  return v128.and(f32x4.mul(y, pow2), keep);
}

/** scores[p] = exp(scores[p] − max) for p < n (in place); returns their sum. */
export function expShiftedSum_f32(scores: usize, n: i32, max: f32): f32 {
  const maxV = f32x4.splat(max);
  let sumV = f32x4.splat(0);
  let p = 0;
  for (; p + 4 <= n; p += 4) {
    const ptr = scores + (<usize>p << 2);
    const e = expNonPositive_f32x4(f32x4.sub(v128.load(ptr), maxV));
    v128.store(ptr, e);
    sumV = f32x4.add(sumV, e);
  }
  let sum = f32x4.extract_lane(sumV, 0) + f32x4.extract_lane(sumV, 1) + f32x4.extract_lane(sumV, 2) + f32x4.extract_lane(sumV, 3);
  for (; p < n; p++) {
    const ptr = scores + (<usize>p << 2);
    const e = f32x4.extract_lane(expNonPositive_f32x4(f32x4.splat(load<f32>(ptr) - max)), 0);
    store<f32>(ptr, e);
    sum += e;
  }
  return sum;
}

function zero_f32(ptr: usize, n: i32): void {
  memory.fill(ptr, 0, <usize>n << 2);
}

/**
 * Store one position's row: src (n f32) -> dst (one cache row of `type`, nPadded values).
 * rotN > 0: dst row = quantize(H_rotN · src) chunk by chunk (scratch receives the rotated row).
 * nPadded > n: the row is zero-padded to whole blocks in scratch first.  scratch: (nPadded) f32.
 * Returns false for an unknown type.
 */
export function storeRow_packed(type: i32, src: usize, n: i32, nPadded: i32, rotN: i32, scratch: usize, dst: usize): bool {
  let from = src;
  if (rotN > 0) {
    fwht_f32(src, scratch, rotN, n / rotN);
    from = scratch;
  } else if (nPadded > n) {
    memory.copy(scratch, src, <usize>n << 2);
    from = scratch;
  }
  if (nPadded > n) zero_f32(scratch + (<usize>n << 2), nPadded - n);
  return quantizeRow_byType(type, from, dst, nPadded);
}

/**
 * out = softmax(q·Kᵀ · scale) V for query heads [headStart, headEnd), over positions [0, nPos) of one layer
 * (a head range lets callers split heads across threads, each with its own scratch).
 *   q, out:      (nHeads, headDim) f32;  query head h reads kv head h / (nHeads / nKvHeads)
 *   kRows:       (nPos, kRowBytes) packed K rows of type kType (kBlock values per kBlockBytes-byte block)
 *   vRows:       (nPos, vRowBytes) packed V rows of type vType
 *   qCover:      (maxCoverK) f32 scratch;  qPartner: the same values in kPartnerType
 *   scores:      (nPos) f32 scratch;  acc: (maxCoverV) f32 scratch
 * where maxCover = (headDim / block + 2) * block values at most.
 */
export function attend_packed(
  q: usize, out: usize, nPos: i32, headStart: i32, headEnd: i32, nHeads: i32, nKvHeads: i32, headDim: i32, scale: f32,
  kRows: usize, kRowBytes: i32, kType: i32, kPartnerType: i32, kBlock: i32, kBlockBytes: i32,
  vRows: usize, vRowBytes: i32, vType: i32, vBlock: i32, vBlockBytes: i32,
  qCover: usize, qPartner: usize, scores: usize, acc: usize,
): void {
  const group = nHeads / nKvHeads;
  const headBytes = <usize>headDim << 2;
  for (let h = headStart; h < headEnd; h++) {
    const qHead = q + <usize>h * headBytes;
    const outHead = out + <usize>h * headBytes;
    if (nPos <= 0) {
      zero_f32(outHead, headDim);
      continue;
    }
    const start = (h / group) * headDim; // first value of this head's slice in a kv row

    // --- scores from packed K: query head -> dot partner over the covering blocks
    const kb0 = start / kBlock;
    const kb1 = (start + headDim + kBlock - 1) / kBlock;
    const kn = (kb1 - kb0) * kBlock;
    const kOff = start - kb0 * kBlock;
    let qSrc = qHead;
    if (kn != headDim) {
      zero_f32(qCover, kn);
      memory.copy(qCover + (<usize>kOff << 2), qHead, headBytes);
      qSrc = qCover;
    }
    quantizeRow_byType(kPartnerType, qSrc, qPartner, kn);
    let kRow = kRows + <usize>kb0 * <usize>kBlockBytes;
    let maxScore: f32 = -Infinity;
    for (let p = 0; p < nPos; p++) {
      const s = dot_byType(kType, kRow, qPartner, kn) * scale;
      store<f32>(scores + (<usize>p << 2), s);
      if (s > maxScore) maxScore = s;
      kRow += <usize>kRowBytes;
    }
    const sum = expShiftedSum_f32(scores, nPos, maxScore);

    // --- weighted sum from packed V over the covering blocks
    const vb0 = start / vBlock;
    const vb1 = (start + headDim + vBlock - 1) / vBlock;
    const vn = (vb1 - vb0) * vBlock;
    const vOff = start - vb0 * vBlock;
    const accHead = vn == headDim ? outHead : acc;
    zero_f32(accHead, vn);
    let vRow = vRows + <usize>vb0 * <usize>vBlockBytes;
    for (let p = 0; p < nPos; p++) {
      axpy_byType(vType, accHead, load<f32>(scores + (<usize>p << 2)), vRow, vn);
      vRow += <usize>vRowBytes;
    }
    const inv: f32 = sum > 0 ? <f32>1 / sum : 0;
    const from = accHead + (<usize>vOff << 2);
    for (let i = 0; i < headDim; i++) {
      const o = <usize>i << 2;
      store<f32>(outHead + o, load<f32>(from + o) * inv);
    }
  }
}
