/**
 * THE format table: every size computation and every kernel lookup for K/V caches and weights is a read of this table.
 * One entry per format, each defined in reference/<name>.ts next to its scalar reference kernels.
 */
import type { BlockFormat, FormatName, KvFormatName } from "./types.js";
import { KV_FORMAT_NAMES, isOwnFormat } from "./types.js";
import { f32 } from "./reference/f32.js";
import { f16 } from "./reference/f16.js";
import { bf16 } from "./reference/bf16.js";
import { q8_0 } from "./reference/q8_0.js";
import { q8_1 } from "./reference/q8_1.js";
import { q4_0 } from "./reference/q4_0.js";
import { q4_1 } from "./reference/q4_1.js";
import { q5_0 } from "./reference/q5_0.js";
import { q5_1 } from "./reference/q5_1.js";
import { iq4_nl } from "./reference/iq4_nl.js";
import { iq3_nl } from "./reference/iq3_nl.js";
import { iq2_nl } from "./reference/iq2_nl.js";
import { iq3_e8 } from "./reference/iq3_e8.js";
import { iq2_e8 } from "./reference/iq2_e8.js";
import { q8_K } from "./reference/q8_K.js";
import { q2_K } from "./reference/q2_K.js";
import { q3_K } from "./reference/q3_K.js";
import { q4_K } from "./reference/q4_K.js";
import { q5_K } from "./reference/q5_K.js";
import { q6_K } from "./reference/q6_K.js";

export const FORMATS: readonly BlockFormat[] = [
  f32, f16, bf16, q8_0, q8_1, q4_0, q4_1, q5_0, q5_1, iq4_nl,
  q8_K, q2_K, q3_K, q4_K, q5_K, q6_K,
  iq3_nl, iq2_nl, iq3_e8, iq2_e8,
];

const byName = new Map<string, BlockFormat>(FORMATS.map((f) => [f.name, f]));
/** llama.cpp's formats by GGML type id (kvsplit's own are never in a GGUF file). */
const byGgmlType = new Map<number, BlockFormat>(FORMATS.filter((f) => !isOwnFormat(f)).map((f) => [f.ggmlType, f]));

export class UnknownFormatError extends Error {
  constructor(readonly requested: string, readonly allowed: readonly string[], what: string) {
    super(`unknown ${what} format '${requested}'; allowed: ${allowed.join(", ")}`);
    this.name = "UnknownFormatError";
  }
}

export function getFormat(name: string): BlockFormat {
  const f = byName.get(name);
  if (!f) throw new UnknownFormatError(name, FORMATS.map((x) => x.name), "block");
  return f;
}

export function getKvFormat(name: string): BlockFormat {
  const f = byName.get(name.toLowerCase());
  if (!f || !f.kv) throw new UnknownFormatError(name, KV_FORMAT_NAMES, "KV cache");
  return f;
}

/** The table entry for a GGML type id, or undefined (the GGUF reader turns that into a typed error). */
export function formatByGgmlType(type: number): BlockFormat | undefined {
  return byGgmlType.get(type);
}

/** Bytes of a row of `n` values; `n` must be a whole number of blocks. */
export function rowBytes(format: BlockFormat, n: number): number {
  if (n % format.blockSize !== 0) {
    throw new RangeError(`${format.name}: a row of ${n} values is not a whole number of ${format.blockSize}-value blocks`);
  }
  return (n / format.blockSize) * format.bytesPerBlock;
}

export function isKvFormatName(name: string): name is KvFormatName {
  return (KV_FORMAT_NAMES as readonly string[]).includes(name);
}

export { isOwnFormat };
export type { BlockFormat, FormatName, KvFormatName };
