// One file per block format (plus matmul-wide.ts and matmul-wide-k.ts: batched products over weight rows decoded once per batch); each exports quantizeRow_<fmt>, dequantizeRow_<fmt>, dot_<fmt>, axpy_<fmt>, matvec_<fmt>, matmul_<fmt>
// (q8_1 and q8_K: quantize and dequantize only); <fmt>_x4.ts: a weight format's four-row tiles (q4_K, q8_0). Shared kernel code lives in common.ts, rowdot.ts, floatdot.ts, kquants.ts and codebook.ts (not exported). tiles.ts: the tiles' shared repack loop.
export * from "./f32";
export * from "./f16";
export * from "./bf16";
export * from "./q8_0";
export * from "./q8_1";
export * from "./q4_0";
export * from "./q4_1";
export * from "./q5_0";
export * from "./q5_1";
export * from "./iq4_nl";
export * from "./iq3_nl";
export * from "./iq2_nl";
export * from "./iq3_e8";
export * from "./iq2_e8";
export * from "./q8_K";
export * from "./q2_K";
export * from "./q3_K";
export * from "./q4_K";
export * from "./q5_K";
export * from "./q6_K";
export * from "./matmul-wide";
export * from "./matmul-wide-k";
export * from "./q4_K_x4";
export * from "./q8_0_x4";
