/**
 * How node-llama-cpp names each KV format: its GgmlType key, as `experimentalKvCacheKeyType/ValueType` take it.
 * Plain data, so that importing it never loads node-llama-cpp (an optional package).
 */
import type { KvFormatName } from "../formats/types.js";

export type LlamaCppKvTypeKey = "F32" | "F16" | "BF16" | "Q8_0" | "Q5_1" | "Q5_0" | "Q4_1" | "Q4_0" | "IQ4_NL";

/** node-llama-cpp's GgmlType key for each of llama.cpp's KV format names (kvsplit's own formats have none). */
const LLAMACPP_KV_TYPE_KEY: Readonly<Partial<Record<KvFormatName, LlamaCppKvTypeKey>>> = {
  f32: "F32",
  f16: "F16",
  bf16: "BF16",
  q8_0: "Q8_0",
  q5_1: "Q5_1",
  q5_0: "Q5_0",
  q4_1: "Q4_1",
  q4_0: "Q4_0",
  iq4_nl: "IQ4_NL",
};

/** node-llama-cpp's GgmlType key of a KV format; a RangeError for kvsplit's own formats, which llama.cpp cannot store. */
export function llamaCppKvTypeKey(name: KvFormatName): LlamaCppKvTypeKey {
  const key = LLAMACPP_KV_TYPE_KEY[name];
  if (!key) throw new RangeError(`${name} is kvsplit's own KV format; llama.cpp cannot store it`);
  return key;
}
