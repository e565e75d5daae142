// The row-by-row matmul of the 32-value block formats (rowdot.ts) and the float formats (floatdot.ts), behind their
// matvec_<fmt> / matmul_<fmt> exports: one weight stream, a row staying in cache while the tokens pass over it, two
// tokens a pass sharing the decoded weights (rowDot…2), a last odd token alone. The format id, a compile-time constant
// at every call, picks the family's row dot; each gives a token the bits of its own row dot, however the batch is cut.
import { BF16, F16, F32, elementBytes, rowDotFloats, rowDotFloats2 } from "./floatdot";
import { blockBytes, rowDotBlocks, rowDotBlocks2 } from "./rowdot";

/** Whether fmt is a float format (floatdot.ts's ids) rather than a 32-value block format (rowdot.ts's). */
// @ts-ignore: decorator
@inline function isFloat(fmt: i32): bool {
  return fmt == F32 || fmt == F16 || fmt == BF16;
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
  for (let r = rowStart; r < rowEnd; r++) {
    const row = w + <usize>r * rowBytes;
    const o = out + (<usize>r << 2);
    let t = 0;
    for (; t + 1 < nTokens; t += 2) {
      const xa = x + <usize>t * xs;
      const xb = xa + xs;
      const oa = o + <usize>t * os;
      if (isFloat(fmt)) rowDotFloats2(fmt, row, xa, xb, n, oa, oa + os);
      else rowDotBlocks2(fmt, row, xa, xb, n, oa, oa + os);
    }
    if (t < nTokens) {
      const xt = x + <usize>t * xs;
      store<f32>(o + <usize>t * os, isFloat(fmt) ? rowDotFloats(fmt, row, xt, n) : rowDotBlocks(fmt, row, xt, n));
    }
  }
}
