// Row kernels of the forward pass: rmsnorm, rope, SwiGLU, residual add. f32 rows at byte offsets; n counts values.

/** rmsnorm_f32 on each of nRows rows of n values (x and out: f32 (nRows, n)). */
export function rmsnorm_rows_f32(out: usize, x: usize, w: usize, n: i32, eps: f32, nRows: i32): void {
  const stride = <usize>n << 2;
  for (let r = 0; r < nRows; r++) rmsnorm_f32(out + <usize>r * stride, x + <usize>r * stride, w, n, eps);
}

/** out[i] = x[i] * w[i] / sqrt(mean(x²) + eps), the sum of squares in f64 as llama.cpp's ggml_rms_norm does. */
export function rmsnorm_f32(out: usize, x: usize, w: usize, n: i32, eps: f32): void {
  let sum: f64 = 0;
  for (let i = 0; i < n; i++) {
    const v = <f64>load<f32>(x + (<usize>i << 2));
    sum += v * v;
  }
  const scale: f32 = <f32>1.0 / <f32>Math.sqrt(<f64>(<f32>(sum / <f64>n) + eps));
  const s4 = f32x4.splat(scale);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    // llama.cpp scales first (ggml_rms_norm), then multiplies by the weight (ggml_mul)
    v128.store(out + o, f32x4.mul(f32x4.mul(v128.load(x + o), s4), v128.load(w + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, (load<f32>(x + o) * scale) * load<f32>(w + o));
  }
}

/**
 * Rotary embedding on `nHeads` heads of `headDim` values, adjacent pairs (llama.cpp's normal rope):
 * (x[2i], x[2i+1]) ← (x0·cos − x1·sin, x0·sin + x1·cos) for i < ropeDim/2, with cos/sin read from `cs`
 * (cs: f32 (ropeDim/2, 2) = cos, sin pairs for this position).
 */
export function rope_norm_f32(x: usize, nHeads: i32, headDim: i32, ropeDim: i32, cs: usize): void {
  const half = ropeDim >> 1;
  for (let h = 0; h < nHeads; h++) {
    const row = x + (<usize>(h * headDim) << 2);
    for (let i = 0; i < half; i++) {
      const p = row + (<usize>i << 3);
      const c = load<f32>(cs + (<usize>i << 3));
      const s = load<f32>(cs + (<usize>i << 3) + 4);
      const x0 = load<f32>(p);
      const x1 = load<f32>(p + 4);
      store<f32>(p, x0 * c - x1 * s);
      store<f32>(p + 4, x0 * s + x1 * c);
    }
  }
}

/**
 * rope_norm_f32 on nTokens consecutive positions: x is f32 (nTokens, nHeads, headDim); token t uses the cos/sin row
 * cs0 + t·(ropeDim/2)·8 (the rope table's rows are consecutive positions).
 */
export function rope_norm_rows_f32(x: usize, nTokens: i32, nHeads: i32, headDim: i32, ropeDim: i32, cs0: usize): void {
  const rowBytes = <usize>(nHeads * headDim) << 2;
  const csBytes = <usize>(ropeDim >> 1) << 3;
  for (let t = 0; t < nTokens; t++) rope_norm_f32(x + <usize>t * rowBytes, nHeads, headDim, ropeDim, cs0 + <usize>t * csBytes);
}

/**
 * Rotary embedding on `nHeads` heads of `headDim` values, halves paired (llama.cpp's NeoX rope, used by qwen2):
 * (x[i], x[i+ropeDim/2]) ← (x0·cos − x1·sin, x0·sin + x1·cos) for i < ropeDim/2; values from ropeDim on are kept
 * (cs: f32 (ropeDim/2, 2) = cos, sin pairs for this position, the same table as rope_norm_f32's).
 */
export function rope_neox_f32(x: usize, nHeads: i32, headDim: i32, ropeDim: i32, cs: usize): void {
  const half = ropeDim >> 1;
  const halfBytes = <usize>half << 2;
  for (let h = 0; h < nHeads; h++) {
    const row = x + (<usize>(h * headDim) << 2);
    for (let i = 0; i < half; i++) {
      const p = row + (<usize>i << 2);
      const c = load<f32>(cs + (<usize>i << 3));
      const s = load<f32>(cs + (<usize>i << 3) + 4);
      const x0 = load<f32>(p);
      const x1 = load<f32>(p + halfBytes);
      store<f32>(p, x0 * c - x1 * s);
      store<f32>(p + halfBytes, x0 * s + x1 * c);
    }
  }
}

/** rope_neox_f32 on nTokens consecutive positions (x: f32 (nTokens, nHeads, headDim)), as rope_norm_rows_f32. */
export function rope_neox_rows_f32(x: usize, nTokens: i32, nHeads: i32, headDim: i32, ropeDim: i32, cs0: usize): void {
  const rowBytes = <usize>(nHeads * headDim) << 2;
  const csBytes = <usize>(ropeDim >> 1) << 3;
  for (let t = 0; t < nTokens; t++) rope_neox_f32(x + <usize>t * rowBytes, nHeads, headDim, ropeDim, cs0 + <usize>t * csBytes);
}

/** x[r][i] += bias[i] on each of nRows rows of n values (x: f32 (nRows, n), bias: f32 (n)): a linear layer's bias. */
export function add_bias_rows_f32(x: usize, bias: usize, n: i32, nRows: i32): void {
  const stride = <usize>n << 2;
  for (let r = 0; r < nRows; r++) {
    const row = x + <usize>r * stride;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      const o = <usize>i << 2;
      v128.store(row + o, f32x4.add(v128.load(row + o), v128.load(bias + o)));
    }
    for (; i < n; i++) {
      const o = <usize>i << 2;
      store<f32>(row + o, load<f32>(row + o) + load<f32>(bias + o));
    }
  }
}

/** gate[i] = silu(gate[i]) * up[i], silu(x) = x / (1 + e^−x). */
export function swiglu_f32(gate: usize, up: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 2;
    const g = load<f32>(gate + o);
    store<f32>(gate + o, (g / (<f32>1.0 + <f32>Math.exp(-<f64>g))) * load<f32>(up + o));
  }
}

/** swiglu_f32 over rows [rowStart, rowEnd) of n values each (gate, up: (rows, n) f32): one thread's share of a batch. */
export function swiglu_rows_f32(gate: usize, up: usize, rowStart: i32, rowEnd: i32, n: i32): void {
  const at = <usize>rowStart * <usize>n << 2;
  swiglu_f32(gate + at, up + at, (rowEnd - rowStart) * n);
}

/** out[i] += a[i] (the residual connection). */
export function add_f32(out: usize, a: usize, n: i32): void {
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(out + o, f32x4.add(v128.load(out + o), v128.load(a + o)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(out + o, load<f32>(out + o) + load<f32>(a + o));
  }
}
