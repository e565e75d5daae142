/**
 * When and how the KV cache is Hadamard-rotated: the rules of llama.cpp (the build inside node-llama-cpp 3.21.1),
 * read from its sources:
 *
 * - src/llama-kv-cache.cpp (constructor, "attn_rot_k = ..."): keys are rotated when the K cache type is quantized
 *   (ggml_is_quantized: q8_0, q5_x, q4_x, iq4_nl; not f32/f16/bf16) and head_dim % 64 == 0; values likewise, on
 *   their own, by the V type. `LLAMA_ATTN_ROT_DISABLE=1` turns both off.
 * - src/llama-kv-cache.cpp build_input_k_rot / build_input_v_rot: the K transform size is the largest power of two
 *   (at least 64) dividing head_dim (64 for head_dim 64, 128 for 128, 64 for 192); the V size is always 64.
 * - src/llama-kv-cache.cpp ggml_gen_hadamard: the matrix is the orthonormal Sylvester-Hadamard matrix
 *   (entries ±1/sqrt(n), no random signs, no permutation): symmetric and its own inverse.
 * - src/llama-graph.cpp build_attn: with K rotation, q and k are rotated (after RoPE); with V rotation, v is rotated
 *   before it is stored and the attention output is rotated again (undoing it) before the output projection.
 *   llama-impl.h llama_mul_mat_hadamard applies it to consecutive chunks of n values of each row.
 * - ggml/src/ggml-cpu/ops.cpp ggml_compute_forward_fwht_f32: on CPU it runs as a fast Walsh–Hadamard transform in f32
 *   (scale by 1/sqrt(n) first, then butterflies). assembly/rotation.ts does the same, in the same order.
 *
 * Scores are unchanged by the rotation in exact arithmetic ((Hq)·(Hk) = q·k), and so is the output (H(Σ p·Hv) = Σ p·v):
 * the point is that rotated rows have fewer outliers, so they quantize better.
 */
import type { BlockFormat } from "../formats/types.js";
import type { WasmRuntime } from "../runtime/wasm.js";

/** Smallest rotation llama.cpp applies; head_dim must be a multiple of it. */
export const MIN_ROTATION_SIZE = 64;
/** llama.cpp's V rotation size, whatever head_dim is. */
export const V_ROTATION_SIZE = 64;

/** llama.cpp's ggml_is_quantized for the KV formats: block formats are, the float formats are not. */
export function isQuantized(format: BlockFormat): boolean {
  return format.blockSize > 1;
}

/** Largest power of two, at least 64, that divides headDim (headDim a multiple of 64). */
export function keyRotationSize(headDim: number): number {
  let n = MIN_ROTATION_SIZE;
  while (headDim % (n * 2) === 0) n *= 2;
  return n;
}

export interface RotationSizes {
  /** Transform size for q and k, or 0 when keys are not rotated. */
  k: number;
  /** Transform size for v and the attention output, or 0 when values are not rotated. */
  v: number;
}

/**
 * The rotation llama.cpp would apply to one layer's cache: each side decided by its own format.
 * `allFormats` also rotates unquantized sides (not llama.cpp's behaviour; for tests and experiments).
 */
export function rotationSizes(enabled: boolean, headDim: number, k: BlockFormat, v: BlockFormat, allFormats = false): RotationSizes {
  const fits = enabled && headDim > 0 && headDim % MIN_ROTATION_SIZE === 0;
  return {
    k: fits && (allFormats || isQuantized(k)) ? keyRotationSize(headDim) : 0,
    v: fits && (allFormats || isQuantized(v)) ? V_ROTATION_SIZE : 0,
  };
}

/** True unless LLAMA_ATTN_ROT_DISABLE is set to a non-zero number, as llama.cpp reads it (atoi). */
export function rotationEnabledByEnv(env: NodeJS.ProcessEnv = typeof process === "undefined" ? {} : process.env): boolean {
  const raw = env.LLAMA_ATTN_ROT_DISABLE;
  if (raw === undefined) return true;
  return (Number.parseInt(raw, 10) || 0) === 0;
}

/**
 * dst = H_n · src for `count` consecutive chunks of n f32 values (src may equal dst), in WebAssembly.
 * n must be a power of two, at least 4.
 */
export function rotateRows(rt: WasmRuntime, srcPtr: number, dstPtr: number, n: number, count: number): void {
  if (n < 4 || (n & (n - 1)) !== 0) throw new RangeError(`rotation size must be a power of two >= 4, got ${n}`);
  rt.k.fwht_f32(srcPtr, dstPtr, n, count);
}

/**
 * Scalar reference of the same transform, in the same operation order, rounding to f32 after each step
 * (tests compare the WebAssembly kernel with it bit for bit). Works in place on `row` (a whole number of chunks).
 */
export function rotateRowReference(row: Float32Array, n: number): void {
  const scale = Math.fround(1 / Math.fround(Math.sqrt(n))); // 1.0f / sqrtf((float)n)
  for (let i = 0; i < row.length; i++) row[i] = Math.fround(row[i] * scale);
  for (let c = 0; c < row.length; c += n) {
    for (let span = 1; span < n; span <<= 1) {
      for (let i = 0; i < n; i += span << 1) {
        for (let j = 0; j < span; j++) {
          const u = row[c + i + j];
          const w = row[c + i + span + j];
          row[c + i + j] = u + w;
          row[c + i + span + j] = u - w;
        }
      }
    }
  }
}
