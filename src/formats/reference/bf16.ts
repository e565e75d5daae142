/** bf16: bfloat16, the top half of a binary32 (GGML type 30), rounded to nearest even as GGML_FP32_TO_BF16. */
import { halfFloatFormat } from "./half.js";
import { bf16BitsToF32, f32ToBf16Bits } from "./scalar.js";

export const bf16 = halfFloatFormat({ name: "bf16", ggmlType: 30, fromF32: f32ToBf16Bits, toF32: bf16BitsToF32 });
