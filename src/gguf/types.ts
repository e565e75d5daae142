/**
 * GGUF data model (v2 and v3, little-endian), as described by ggml's docs/gguf.md.
 *
 * Representation of metadata values:
 * - UINT8..INT32, FLOAT32, FLOAT64 scalars are `number`.
 * - UINT64 and INT64 scalars are always `bigint` (so a round trip never loses bits); `metaNumber` converts them
 *   to `number` when they are safe integers and throws otherwise.
 * - BOOL is `boolean`, STRING is a `string` (decoded as strict UTF-8).
 * - Arrays: numeric item types become the matching typed array (Uint8Array ... Float64Array, BigUint64Array /
 *   BigInt64Array for 64-bit integers), BOOL arrays `boolean[]`, STRING arrays `string[]`, nested arrays `GgufValue[]`.
 */
import type { BlockFormat } from "../formats/types.js";

/** Metadata value type ids (gguf_metadata_value_type in the spec). */
export const GgufValueType = {
  UINT8: 0,
  INT8: 1,
  UINT16: 2,
  INT16: 3,
  UINT32: 4,
  INT32: 5,
  FLOAT32: 6,
  BOOL: 7,
  STRING: 8,
  ARRAY: 9,
  UINT64: 10,
  INT64: 11,
  FLOAT64: 12,
} as const;
export type GgufValueType = (typeof GgufValueType)[keyof typeof GgufValueType];

const VALUE_TYPE_NAMES: readonly string[] = [
  "uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64",
];

/** "uint32", "array", ... for a type id; "type N" for ids outside the spec. */
export function valueTypeName(type: number): string {
  return VALUE_TYPE_NAMES[type] ?? `type ${type}`;
}

export function isValueType(type: number): type is GgufValueType {
  return Number.isInteger(type) && type >= 0 && type < VALUE_TYPE_NAMES.length;
}

/** Bytes of one scalar of a fixed-size type (undefined for STRING and ARRAY). */
export const FIXED_VALUE_BYTES: Readonly<Partial<Record<GgufValueType, number>>> = {
  0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8,
};

export type GgufNumericArray =
  | Uint8Array
  | Int8Array
  | Uint16Array
  | Int16Array
  | Uint32Array
  | Int32Array
  | Float32Array
  | Float64Array
  | BigUint64Array
  | BigInt64Array;

export type GgufArray = GgufNumericArray | boolean[] | string[] | GgufValue[];

export type GgufValue = number | bigint | boolean | string | GgufArray;

/** Where and as what a metadata value was stored. */
export interface GgufMetaEntry {
  readonly type: GgufValueType;
  /** Item type for arrays. */
  readonly itemType?: GgufValueType;
  /** Absolute file offset of the value (just after the key and type). */
  readonly offset: number;
}

export interface GgufTensorInfo {
  readonly name: string;
  /** Dimensions as stored: ne0 (the contiguous row length) first. */
  readonly shape: number[];
  readonly ggmlType: number;
  readonly format: BlockFormat;
  /** Absolute file offset of the first byte of data. */
  readonly offset: number;
  /** rows × rowBytes(format, ne0). */
  readonly byteSize: number;
  readonly nElements: number;
}

export interface GgufFile {
  /** The source's name (path for files). */
  readonly name: string;
  readonly version: number;
  readonly alignment: number;
  readonly metadata: Map<string, GgufValue>;
  /** Type and offset of each metadata value (same keys as `metadata`). */
  readonly metadataEntries: Map<string, GgufMetaEntry>;
  /** In file order. */
  readonly tensors: GgufTensorInfo[];
  /** Absolute offset of the tensor data section. */
  readonly dataOffset: number;
  readonly fileSize: number;
}

/** Random-access bytes: a file, or a buffer. */
export interface ByteSource {
  readonly name: string;
  readonly size: number;
  /**
   * `length` bytes from `offset` (the caller keeps within [0, size)). The result may share memory with the source:
   * treat it as read-only.
   */
  read(offset: number, length: number): Uint8Array;
  /** Where the source can: `target.length` bytes from `offset` written straight into `target` (no temporary copy). */
  readInto?(offset: number, target: Uint8Array): void;
}
