/**
 * Typed metadata getters: each throws a GgufError naming the key, the expected type and the type found.
 * Numbers: metaNumber accepts every integer and float type; 64-bit integers must be safe integers.
 */
import { GgufError } from "./errors.js";
import { valueTypeName, type GgufFile, type GgufNumericArray, type GgufValue } from "./types.js";

/** Numeric arrays as returned by metaNumberArray (64-bit integer arrays are converted to Float64Array). */
export type GgufNumberArray = Exclude<GgufNumericArray, BigUint64Array | BigInt64Array>;

function describe(file: GgufFile, key: string): string {
  const e = file.metadataEntries.get(key);
  if (!e) return "absent";
  return e.itemType === undefined ? valueTypeName(e.type) : `array of ${valueTypeName(e.itemType)}`;
}

function wrongType(file: GgufFile, key: string, expected: string): never {
  const offset = file.metadataEntries.get(key)?.offset ?? -1;
  throw new GgufError("wrong_type", file.name, offset, expected, describe(file, key), `metadata '${key}'`);
}

function missing(file: GgufFile, key: string, expected: string): never {
  throw new GgufError("missing_key", file.name, -1, `${expected} '${key}'`, "no such key", `metadata '${key}'`);
}

function get<T>(file: GgufFile, key: string, expected: string, convert: (v: GgufValue) => T | undefined): T | undefined {
  const v = file.metadata.get(key);
  if (v === undefined) return undefined;
  const out = convert(v);
  if (out === undefined) wrongType(file, key, expected);
  return out;
}

function required<T>(file: GgufFile, key: string, expected: string, convert: (v: GgufValue) => T | undefined): T {
  const out = get(file, key, expected, convert);
  if (out === undefined) missing(file, key, expected);
  return out;
}

const asString = (v: GgufValue): string | undefined => (typeof v === "string" ? v : undefined);
const asBool = (v: GgufValue): boolean | undefined => (typeof v === "boolean" ? v : undefined);
const asNumber = (v: GgufValue): number | undefined => {
  if (typeof v === "number") return v;
  if (typeof v === "bigint" && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  return undefined;
};
const asStringArray = (v: GgufValue): string[] | undefined =>
  Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : undefined;
const asNumberArray = (v: GgufValue): GgufNumberArray | undefined => {
  if (v instanceof BigInt64Array || v instanceof BigUint64Array) {
    const out = new Float64Array(v.length);
    for (let i = 0; i < v.length; i++) {
      const n = asNumber(v[i]!);
      if (n === undefined) return undefined;
      out[i] = n;
    }
    return out;
  }
  return ArrayBuffer.isView(v) ? (v as GgufNumberArray) : undefined;
};

const NUMBER = "a number (any integer or float type; 64-bit integers within ±2^53)";

export function metaString(file: GgufFile, key: string): string {
  return required(file, key, "string", asString);
}
export function metaOptionalString(file: GgufFile, key: string): string | undefined {
  return get(file, key, "string", asString);
}
export function metaNumber(file: GgufFile, key: string): number {
  return required(file, key, NUMBER, asNumber);
}
export function metaOptionalNumber(file: GgufFile, key: string): number | undefined {
  return get(file, key, NUMBER, asNumber);
}
export function metaBool(file: GgufFile, key: string): boolean {
  return required(file, key, "bool", asBool);
}
export function metaOptionalBool(file: GgufFile, key: string): boolean | undefined {
  return get(file, key, "bool", asBool);
}
export function metaStringArray(file: GgufFile, key: string): string[] {
  return required(file, key, "array of string", asStringArray);
}
export function metaOptionalStringArray(file: GgufFile, key: string): string[] | undefined {
  return get(file, key, "array of string", asStringArray);
}
/** The stored typed array (shared, do not modify), or a Float64Array copy for 64-bit integer arrays. */
export function metaNumberArray(file: GgufFile, key: string): GgufNumberArray {
  return required(file, key, "array of numbers", asNumberArray);
}
export function metaOptionalNumberArray(file: GgufFile, key: string): GgufNumberArray | undefined {
  return get(file, key, "array of numbers", asNumberArray);
}
