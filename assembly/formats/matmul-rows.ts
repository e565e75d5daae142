// The row-by-row matmul of the 32-value block formats (rowdot.ts) and the float formats (floatdot.ts), behind their
// matvec_<fmt> / matmul_<fmt> exports: one weight stream, a row staying in cache while the tokens pass over it, two
// tokens a pass sharing the decoded weights (rowDotBlocks2, rowDotsFloats), a last odd token alone. f16 and bf16 rows, whose decode costs
// more than their products, go four at a time for one token and two rows by two tokens for more (rowDotsFloats: each
// step's values decoded once for the four dots), the rows left over one at a time. The format id, a compile-time
// constant at every call, picks the family's row dot; every pass gives a (row, token) the bits of its own row dot,
// however the rows and the batch are cut.
import { BF16, DOTS_1X2, DOTS_2X2, DOTS_4X1, F16, F32, elementBytes, rowDotFloats, rowDotsFloats } from "./floatdot";
import { blockBytes, rowDotBlocks, rowDotBlocks2 } from "./rowdot";

/** Whether fmt is a float format (floatdot.ts's ids) rather than a 32-value block format (rowdot.ts's). */
// @ts-ignore: decorator
@inline function isFloat(fmt: i32): bool {
  return fmt == F32 || fmt == F16 || fmt == BF16;
}

/**
 * Whether fmt is f16 or bf16, whose rows take the multi-row passes. f32 rows need no decode, and four a pass ran
 * slower than one (2048 × 2048 matvec, one thread: 0.670 against 0.405 ms).
 */
// @ts-ignore: decorator
@inline function isHalf(fmt: i32): bool {
  return fmt == F16 || fmt == BF16;
}

/**
 * out[t][r] = rowDot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens): W (rows, cols) in fmt, X (nTokens,
 * xStride bytes) in its dot partner, out (nTokens, outStride bytes) f32.
 */
// @ts-ignore: decorator
@inline export function matmulRows(fmt: i32, w: usize, x: usize, out: usize, rowStart: i32, rowEnd: i32, cols: i32, nTokens: i32, xStride: i32, outStride: i32): void {
  const n = isFloat(fmt) ? cols : cols >> 5; // the row dot's length: values, or blocks
  const rowBytes = isFloat(fmt) ? <usize>cols * elementBytes(fmt) : <usize>n * blockBytes(fmt);
  const xs = <usize>xStride;
  const os = <usize>outStride;
  let r = rowStart;
  // one token over 16-bit float rows: four rows a pass share each step's decoded input values
  if (isHalf(fmt) && nTokens == 1) for (; r + 3 < rowEnd; r += 4) rowDotsFloats(fmt, DOTS_4X1, w + <usize>r * rowBytes, rowBytes, x, 0, n, out + (<usize>r << 2), 0);
  // several tokens over 16-bit float rows: two rows by two tokens a pass, each step's weights and inputs decoded once
  // for four dots
  if (isHalf(fmt) && nTokens > 1) {
    for (; r + 1 < rowEnd; r += 2) {
      const row = w + <usize>r * rowBytes;
      const o = out + (<usize>r << 2);
      let t = 0;
      for (; t + 1 < nTokens; t += 2) rowDotsFloats(fmt, DOTS_2X2, row, rowBytes, x + <usize>t * xs, xs, n, o + <usize>t * os, os);
      if (t < nTokens) {
        const xt = x + <usize>t * xs;
        store<f32>(o + <usize>t * os, rowDotFloats(fmt, row, xt, n));
        store<f32>(o + <usize>t * os + 4, rowDotFloats(fmt, row + rowBytes, xt, n));
      }
    }
  }
  for (; r < rowEnd; r++) {
    const row = w + <usize>r * rowBytes;
    const o = out + (<usize>r << 2);
    let t = 0;
    for (; t + 1 < nTokens; t += 2) {
      const xa = x + <usize>t * xs;
      const xb = xa + xs;
      const oa = o + <usize>t * os;
      if (isFloat(fmt)) rowDotsFloats(fmt, DOTS_1X2, row, 0, xa, xs, n, oa, os);
      else rowDotBlocks2(fmt, row, xa, xb, n, oa, oa + os);
    }
    if (t < nTokens) {
      const xt = x + <usize>t * xs;
      store<f32>(o + <usize>t * os, isFloat(fmt) ? rowDotFloats(fmt, row, xt, n) : rowDotBlocks(fmt, row, xt, n));
    }
  }
}
