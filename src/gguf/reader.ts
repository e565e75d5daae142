/**
 * GGUF reader (v2, v3; little-endian). A pure parser of the header, metadata and tensor table with named limits
 * against hostile files: every problem becomes a GgufError naming the file, byte offset, expected and found value.
 * Tensor data is not read here; use `readTensorData` (or the offsets) to fetch it.
 */
import { FORMATS, formatByGgmlType, isOwnFormat, rowBytes } from "../formats/table.js";
import { GgufError } from "./errors.js";
import { fileSource } from "./source.js";
import {
  FIXED_VALUE_BYTES,
  GgufValueType,
  isValueType,
  valueTypeName,
  type ByteSource,
  type GgufFile,
  type GgufMetaEntry,
  type GgufTensorInfo,
  type GgufValue,
} from "./types.js";

export * from "./meta.js";

/** "GGUF" read as a little-endian u32. */
export const GGUF_MAGIC = 0x46554747;
export const SUPPORTED_VERSIONS: readonly number[] = [2, 3];
export const DEFAULT_ALIGNMENT = 32;

// Named limits against hostile files.
/** Longest string value (bytes). Chat templates and descriptions stay far below. */
export const MAX_STRING_BYTES = 16 * 1024 * 1024;
/** Longest metadata key or tensor name (bytes). */
export const MAX_NAME_BYTES = 64 * 1024;
/** Most items in one metadata array (vocabularies and merges of 262k-token models fit). */
export const MAX_ARRAY_LENGTH = 16 * 1024 * 1024;
/** Deepest nesting of arrays inside arrays. */
export const MAX_ARRAY_NESTING = 4;
export const MAX_METADATA_COUNT = 65536;
export const MAX_TENSOR_COUNT = 65536;
/** GGML_MAX_DIMS. */
export const MAX_TENSOR_DIMS = 4;
/** Largest accepted general.alignment. */
export const MAX_ALIGNMENT = 1 << 30;

/** Bytes fetched from the source at a time while parsing the header. */
const READ_WINDOW = 1 << 20;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** A position in the source with a read-ahead window; every read checks the file's end. */
class Cursor {
  pos = 0;
  private buf: Uint8Array = new Uint8Array(0);
  private bufStart = 0;
  private view = new DataView(this.buf.buffer);

  constructor(readonly src: ByteSource) {}

  fail(code: GgufError["code"], at: number, what: string, expected: string, found: string): never {
    throw new GgufError(code, this.src.name, at, expected, found, what);
  }

  remaining(): number {
    return this.src.size - this.pos;
  }

  /** Reserve n bytes at pos; returns their index in the window and advances. */
  private take(n: number, what: string): number {
    if (n > this.remaining()) {
      this.fail("truncated", this.pos, what, `${n} more bytes`, `${this.remaining()} bytes before the end of the file`);
    }
    if (this.pos < this.bufStart || this.pos + n > this.bufStart + this.buf.length) {
      const len = Math.min(Math.max(n, READ_WINDOW), this.src.size - this.pos);
      this.buf = this.src.read(this.pos, len);
      this.bufStart = this.pos;
      this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    }
    const i = this.pos - this.bufStart;
    this.pos += n;
    return i;
  }

  u8(what: string): number {
    return this.buf[this.take(1, what)]!;
  }
  u32(what: string): number {
    const i = this.take(4, what);
    return this.view.getUint32(i, true);
  }
  u64(what: string): bigint {
    const i = this.take(8, what);
    return this.view.getBigUint64(i, true);
  }
  /** A scalar of a fixed-size type. */
  scalar(type: GgufValueType, what: string): number | bigint | boolean {
    const at = this.pos;
    const i = this.take(FIXED_VALUE_BYTES[type]!, what);
    const v = this.view;
    switch (type) {
      case GgufValueType.UINT8: return v.getUint8(i);
      case GgufValueType.INT8: return v.getInt8(i);
      case GgufValueType.UINT16: return v.getUint16(i, true);
      case GgufValueType.INT16: return v.getInt16(i, true);
      case GgufValueType.UINT32: return v.getUint32(i, true);
      case GgufValueType.INT32: return v.getInt32(i, true);
      case GgufValueType.FLOAT32: return v.getFloat32(i, true);
      case GgufValueType.UINT64: return v.getBigUint64(i, true);
      case GgufValueType.INT64: return v.getBigInt64(i, true);
      case GgufValueType.FLOAT64: return v.getFloat64(i, true);
      case GgufValueType.BOOL: {
        const b = v.getUint8(i);
        if (b > 1) this.fail("bad_value", at, what, "bool 0 or 1", String(b));
        return b === 1;
      }
      default:
        return this.fail("bad_value", at, what, "a fixed-size type", valueTypeName(type));
    }
  }
  /** n raw bytes (a view valid until the next read: copy to keep). */
  bytes(n: number, what: string): Uint8Array {
    const i = this.take(n, what);
    return this.buf.subarray(i, i + n);
  }
  /** A u64 that must fit `limit`, reported as limit_exceeded otherwise. */
  count(limit: number, what: string): number {
    const at = this.pos;
    const n = this.u64(what);
    if (n > BigInt(limit)) this.fail("limit_exceeded", at, what, `at most ${limit}`, String(n));
    return Number(n);
  }
  string(limit: number, what: string): string {
    const len = this.count(limit, `${what} length`);
    const at = this.pos;
    const raw = this.bytes(len, what);
    try {
      return utf8.decode(raw);
    } catch {
      return this.fail("bad_value", at, what, "UTF-8 text", "invalid UTF-8 bytes");
    }
  }
}

function valueType(c: Cursor, what: string): GgufValueType {
  const at = c.pos;
  const t = c.u32(what);
  if (!isValueType(t)) c.fail("bad_value", at, what, "a value type 0..12", String(t));
  return t;
}

function readValue(c: Cursor, type: GgufValueType, what: string, depth: number): GgufValue {
  if (type === GgufValueType.STRING) return c.string(MAX_STRING_BYTES, what);
  if (type === GgufValueType.ARRAY) return readArray(c, what, depth + 1);
  return c.scalar(type, what);
}

function readArray(c: Cursor, what: string, depth: number): GgufValue {
  const typeAt = c.pos;
  const itemType = valueType(c, `${what} item type`);
  if (itemType === GgufValueType.ARRAY && depth >= MAX_ARRAY_NESTING) {
    c.fail("limit_exceeded", typeAt, what, `arrays nested at most ${MAX_ARRAY_NESTING} deep`, "deeper nesting");
  }
  const lenAt = c.pos;
  const n = c.count(MAX_ARRAY_LENGTH, `${what} length`);
  // Smallest possible encoding of each item: fail as truncated before allocating for a length the file cannot hold.
  const minItemBytes = FIXED_VALUE_BYTES[itemType] ?? (itemType === GgufValueType.STRING ? 8 : 12);
  if (n * minItemBytes > c.remaining()) {
    c.fail("truncated", lenAt, `${what} (${n} × ${valueTypeName(itemType)})`, `at least ${n * minItemBytes} bytes`, `${c.remaining()} bytes left`);
  }
  switch (itemType) {
    case GgufValueType.STRING: {
      const out: string[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = c.string(MAX_STRING_BYTES, `${what}[${i}]`);
      return out;
    }
    case GgufValueType.ARRAY: {
      const out: GgufValue[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = readArray(c, `${what}[${i}]`, depth + 1);
      return out;
    }
    case GgufValueType.BOOL: {
      const out: boolean[] = new Array(n);
      for (let i = 0; i < n; i++) out[i] = c.scalar(itemType, `${what}[${i}]`) as boolean;
      return out;
    }
    default: {
      // Copy into a fresh (aligned) buffer and view it with the item's typed array (host is little-endian, as GGUF).
      const raw = c.bytes(n * minItemBytes, what).slice();
      return numericArrayView(itemType, raw.buffer, n);
    }
  }
}

function numericArrayView(type: GgufValueType, buffer: ArrayBuffer, n: number): GgufValue {
  switch (type) {
    case GgufValueType.UINT8: return new Uint8Array(buffer, 0, n);
    case GgufValueType.INT8: return new Int8Array(buffer, 0, n);
    case GgufValueType.UINT16: return new Uint16Array(buffer, 0, n);
    case GgufValueType.INT16: return new Int16Array(buffer, 0, n);
    case GgufValueType.UINT32: return new Uint32Array(buffer, 0, n);
    case GgufValueType.INT32: return new Int32Array(buffer, 0, n);
    case GgufValueType.FLOAT32: return new Float32Array(buffer, 0, n);
    case GgufValueType.UINT64: return new BigUint64Array(buffer, 0, n);
    case GgufValueType.INT64: return new BigInt64Array(buffer, 0, n);
    case GgufValueType.FLOAT64: return new Float64Array(buffer, 0, n);
    default: throw new Error(`numericArrayView: ${valueTypeName(type)} is not numeric`);
  }
}

const HOST_IS_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Every supported tensor type, for error messages: "f32 (0), f16 (1), ...". */
function supportedTensorTypes(): string {
  return FORMATS.filter((f) => (f.weight || f.kv) && !isOwnFormat(f)).map((f) => `${f.name} (${f.ggmlType})`).join(", ");
}

function alignUp(x: number, alignment: number): number {
  return Math.ceil(x / alignment) * alignment;
}

function readAlignment(c: Cursor, metadata: Map<string, GgufValue>, entries: Map<string, GgufMetaEntry>): number {
  const entry = entries.get("general.alignment");
  if (!entry) return DEFAULT_ALIGNMENT;
  const v = metadata.get("general.alignment");
  const what = "general.alignment";
  if (typeof v !== "number" && typeof v !== "bigint") {
    return c.fail("bad_alignment", entry.offset, what, "an integer", valueTypeName(entry.type));
  }
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0 || n > MAX_ALIGNMENT || (n & (n - 1)) !== 0) {
    c.fail("bad_alignment", entry.offset, what, `a power of two in 1..${MAX_ALIGNMENT}`, String(v));
  }
  return n;
}

interface RawTensor {
  info: Omit<GgufTensorInfo, "offset">;
  relOffset: number;
  /** Where the tensor's info starts (for error messages). */
  infoAt: number;
  offsetAt: number;
}

function readTensorInfo(c: Cursor, index: number, alignment: number, seen: Set<string>): RawTensor {
  const infoAt = c.pos;
  const name = c.string(MAX_NAME_BYTES, `tensor ${index} name`);
  const what = `tensor '${name}'`;
  if (seen.has(name)) c.fail("duplicate_tensor", infoAt, what, "unique tensor names", `a second tensor named '${name}'`);
  seen.add(name);
  const dimsAt = c.pos;
  const nDims = c.u32(`${what} dimension count`);
  if (nDims > MAX_TENSOR_DIMS) c.fail("limit_exceeded", dimsAt, `${what} dimension count`, `at most ${MAX_TENSOR_DIMS}`, String(nDims));
  if (nDims === 0) c.fail("bad_value", dimsAt, `${what} dimension count`, `1..${MAX_TENSOR_DIMS}`, "0");
  const shape: number[] = [];
  let nElements = 1;
  for (let d = 0; d < nDims; d++) {
    const at = c.pos;
    const ne = c.u64(`${what} dimension ${d}`);
    if (ne === 0n) c.fail("bad_value", at, `${what} dimension ${d}`, "at least 1", "0");
    if (ne > BigInt(Number.MAX_SAFE_INTEGER) || !Number.isSafeInteger(nElements * Number(ne))) {
      c.fail("limit_exceeded", at, `${what} dimension ${d}`, `an element count at most ${Number.MAX_SAFE_INTEGER}`, String(ne));
    }
    shape.push(Number(ne));
    nElements *= Number(ne);
  }
  const typeAt = c.pos;
  const ggmlType = c.u32(`${what} type`);
  const format = formatByGgmlType(ggmlType);
  if (!format) {
    c.fail("unknown_tensor_type", typeAt, `${what} type`, `one of ${supportedTensorTypes()}`, `ggml type ${ggmlType}`);
  }
  const ne0 = shape[0]!;
  if (ne0 % format.blockSize !== 0) {
    c.fail("bad_value", dimsAt, `${what} row length`, `a multiple of ${format.name}'s ${format.blockSize}-value block`, String(ne0));
  }
  const byteSize = (nElements / ne0) * rowBytes(format, ne0);
  if (!Number.isSafeInteger(byteSize)) {
    c.fail("limit_exceeded", dimsAt, `${what} byte size`, `at most ${Number.MAX_SAFE_INTEGER} bytes`, String(byteSize));
  }
  const offsetAt = c.pos;
  const rel = c.u64(`${what} data offset`);
  if (rel > BigInt(Number.MAX_SAFE_INTEGER)) {
    c.fail("out_of_bounds", offsetAt, `${what} data offset`, "an offset inside the file", String(rel));
  }
  const relOffset = Number(rel);
  if (relOffset % alignment !== 0) {
    c.fail("bad_alignment", offsetAt, `${what} data offset`, `a multiple of the alignment ${alignment}`, String(relOffset));
  }
  return { info: { name, shape, ggmlType, format, byteSize, nElements }, relOffset, infoAt, offsetAt };
}

/** Check every tensor's data lies inside the file and no two overlap. */
function placeTensors(c: Cursor, raw: RawTensor[], dataOffset: number): GgufTensorInfo[] {
  const tensors = raw.map((r): GgufTensorInfo => {
    const offset = dataOffset + r.relOffset;
    const end = offset + r.info.byteSize;
    if (end > c.src.size) {
      c.fail("out_of_bounds", r.offsetAt, `tensor '${r.info.name}' data`, `bytes [${offset}, ${end}) inside the file of ${c.src.size} bytes`,
        `${end - c.src.size} bytes past its end`);
    }
    return { ...r.info, offset };
  });
  const order = tensors.map((_, i) => i).sort((a, b) => tensors[a]!.offset - tensors[b]!.offset);
  for (let k = 1; k < order.length; k++) {
    const prev = tensors[order[k - 1]!]!;
    const cur = tensors[order[k]!]!;
    if (cur.offset < prev.offset + prev.byteSize) {
      c.fail("out_of_bounds", raw[order[k]!]!.offsetAt, `tensor '${cur.name}' data`,
        `no overlap with tensor '${prev.name}' [${prev.offset}, ${prev.offset + prev.byteSize})`, `data starting at ${cur.offset}`);
    }
  }
  return tensors;
}

export function parseGguf(src: ByteSource): GgufFile {
  if (!HOST_IS_LITTLE_ENDIAN) throw new Error("the GGUF reader needs a little-endian host");
  const c = new Cursor(src);
  if (src.size < 4) c.fail("not_gguf", 0, "magic", "'GGUF' (47 47 55 46)", `a file of ${src.size} bytes`);
  const magic = c.u32("magic");
  if (magic !== GGUF_MAGIC) c.fail("not_gguf", 0, "magic", "'GGUF' (47 47 55 46)", `0x${magic.toString(16).padStart(8, "0")}`);
  const version = c.u32("version");
  if (!SUPPORTED_VERSIONS.includes(version)) {
    const hint = version === 1 ? " (GGUF v1 is not supported: re-convert the model)" : version > 0xffff ? " (big-endian files are not supported)" : "";
    c.fail("unsupported_version", 4, "version", `one of ${SUPPORTED_VERSIONS.join(", ")}`, `${version}${hint}`);
  }
  const tensorCount = c.count(MAX_TENSOR_COUNT, "tensor count");
  const metadataCount = c.count(MAX_METADATA_COUNT, "metadata count");

  const metadata = new Map<string, GgufValue>();
  const metadataEntries = new Map<string, GgufMetaEntry>();
  for (let i = 0; i < metadataCount; i++) {
    const keyAt = c.pos;
    const key = c.string(MAX_NAME_BYTES, `metadata key ${i}`);
    if (metadata.has(key)) c.fail("bad_value", keyAt, `metadata key ${i}`, "unique keys", `a second '${key}'`);
    const type = valueType(c, `metadata '${key}' type`);
    const offset = c.pos;
    const value = readValue(c, type, `metadata '${key}'`, 0);
    metadata.set(key, value);
    let itemType: GgufValueType | undefined;
    // The item type is the array's first u32 (already validated as 0..12, so its low byte is the whole value).
    if (type === GgufValueType.ARRAY) itemType = src.read(offset, 4)[0] as GgufValueType;
    metadataEntries.set(key, itemType === undefined ? { type, offset } : { type, itemType, offset });
  }
  const alignment = readAlignment(c, metadata, metadataEntries);

  const seen = new Set<string>();
  const raw: RawTensor[] = [];
  for (let i = 0; i < tensorCount; i++) raw.push(readTensorInfo(c, i, alignment, seen));
  const dataOffset = alignUp(c.pos, alignment);
  const tensors = placeTensors(c, raw, dataOffset);
  return { name: src.name, version, alignment, metadata, metadataEntries, tensors, dataOffset, fileSize: src.size };
}

/** The header (metadata and tensor table) of the GGUF file at `path`; the file is closed again, tensor data never read. */
export function readGgufHeader(path: string): GgufFile {
  const src = fileSource(path);
  try {
    return parseGguf(src);
  } finally {
    src.close();
  }
}

/** A tensor's raw bytes (rows × rowBytes, as stored). */
export function readTensorData(src: ByteSource, tensor: GgufTensorInfo): Uint8Array {
  return src.read(tensor.offset, tensor.byteSize);
}

/** The tensor of that name, or undefined. */
export function findTensor(file: GgufFile, name: string): GgufTensorInfo | undefined {
  return file.tensors.find((t) => t.name === name);
}
