/** f16: IEEE binary16 (GGML type 1), rounded to nearest even as GGML_FP32_TO_FP16. */
import { halfFloatFormat } from "./half.js";
import { f16BitsToF32, f32ToF16Bits } from "./scalar.js";

export const f16 = halfFloatFormat({ name: "f16", ggmlType: 1, fromF32: f32ToF16Bits, toF32: f16BitsToF32 });
