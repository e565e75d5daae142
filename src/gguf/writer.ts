/**
 * GGUF v3 writer. One serializer (`serializeGguf`) streams header, padding and tensor data chunk by chunk into a sink;
 * `encodeGguf` collects the chunks in memory (small fixtures), `writeGguf` writes them to a temporary file and renames
 * it into place (atomic; tensor data may be produced lazily so a large model never sits in memory whole).
 */
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import { FORMATS, formatByGgmlType, isOwnFormat, rowBytes } from "../formats/table.js";
import { GGUF_MAGIC, DEFAULT_ALIGNMENT, MAX_TENSOR_DIMS } from "./reader.js";
import { GgufValueType, valueTypeName } from "./types.js";

export type GgufScalarSpecValue = number | bigint | boolean | string;

export interface GgufMetadataSpec {
  key: string;
  type: GgufValueType;
  /** Item type when `type` is ARRAY (arrays of arrays are not written). */
  itemType?: GgufValueType;
  /** A scalar of `type`, or for arrays a list / typed array of `itemType` scalars. 64-bit integers: number or bigint. */
  value: GgufScalarSpecValue | ArrayLike<GgufScalarSpecValue>;
}

export interface GgufTensorSpec {
  name: string;
  /** ne0 (row length) first. */
  shape: number[];
  ggmlType: number;
  /** rows × rowBytes(format, ne0) bytes; a function is called once, when the tensor is written. */
  data: Uint8Array | (() => Uint8Array);
}

export interface GgufSpec {
  metadata: GgufMetadataSpec[];
  tensors: GgufTensorSpec[];
  /** Tensor data alignment (default 32); written as general.alignment (u32) when not 32 and not already given. */
  alignment?: number;
  /** 3 (default) or 2: both share one layout for little-endian files. */
  version?: 2 | 3;
}

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = new Uint8Array(4096);
  private view = new DataView(this.buf.buffer);
  length = 0;

  /** Room for n more bytes (may replace buf and view: read them after calling). Returns where they start. */
  private reserve(n: number): number {
    if (this.length + n > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, this.length + n));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
      this.view = new DataView(next.buffer);
    }
    const at = this.length;
    this.length += n;
    return at;
  }
  u8(v: number): void { const at = this.reserve(1); this.view.setUint8(at, v); }
  i8(v: number): void { const at = this.reserve(1); this.view.setInt8(at, v); }
  u16(v: number): void { const at = this.reserve(2); this.view.setUint16(at, v, true); }
  i16(v: number): void { const at = this.reserve(2); this.view.setInt16(at, v, true); }
  u32(v: number): void { const at = this.reserve(4); this.view.setUint32(at, v, true); }
  i32(v: number): void { const at = this.reserve(4); this.view.setInt32(at, v, true); }
  f32(v: number): void { const at = this.reserve(4); this.view.setFloat32(at, v, true); }
  f64(v: number): void { const at = this.reserve(8); this.view.setFloat64(at, v, true); }
  u64(v: bigint): void { const at = this.reserve(8); this.view.setBigUint64(at, v, true); }
  i64(v: bigint): void { const at = this.reserve(8); this.view.setBigInt64(at, v, true); }
  bytes(b: Uint8Array): void {
    const at = this.reserve(b.length); // may replace this.buf
    this.buf.set(b, at);
  }
  string(s: string): void {
    const b = new TextEncoder().encode(s);
    this.u64(BigInt(b.length));
    this.bytes(b);
  }
  result(): Uint8Array { return this.buf.subarray(0, this.length); }
}

const INT_RANGES: Partial<Record<GgufValueType, [number, number]>> = {
  [GgufValueType.UINT8]: [0, 0xff],
  [GgufValueType.INT8]: [-0x80, 0x7f],
  [GgufValueType.UINT16]: [0, 0xffff],
  [GgufValueType.INT16]: [-0x8000, 0x7fff],
  [GgufValueType.UINT32]: [0, 0xffffffff],
  [GgufValueType.INT32]: [-0x80000000, 0x7fffffff],
};

function writeScalar(w: ByteWriter, type: GgufValueType, v: GgufScalarSpecValue, what: string): void {
  const bad = (expected: string): never => {
    throw new RangeError(`GGUF writer: ${what}: expected ${expected}, got ${typeof v} ${String(v)}`);
  };
  const range = INT_RANGES[type];
  if (range) {
    if (typeof v !== "number" || !Number.isInteger(v) || v < range[0] || v > range[1]) bad(`a ${valueTypeName(type)} integer in [${range[0]}, ${range[1]}]`);
  }
  switch (type) {
    case GgufValueType.UINT8: return w.u8(v as number);
    case GgufValueType.INT8: return w.i8(v as number);
    case GgufValueType.UINT16: return w.u16(v as number);
    case GgufValueType.INT16: return w.i16(v as number);
    case GgufValueType.UINT32: return w.u32(v as number);
    case GgufValueType.INT32: return w.i32(v as number);
    case GgufValueType.FLOAT32:
    case GgufValueType.FLOAT64:
      if (typeof v !== "number") bad("a number");
      return type === GgufValueType.FLOAT32 ? w.f32(v as number) : w.f64(v as number);
    case GgufValueType.BOOL:
      if (typeof v !== "boolean") bad("a boolean");
      return w.u8(v ? 1 : 0);
    case GgufValueType.STRING:
      if (typeof v !== "string") bad("a string");
      return w.string(v as string);
    case GgufValueType.UINT64:
    case GgufValueType.INT64: {
      const big = typeof v === "bigint" ? v : typeof v === "number" && Number.isSafeInteger(v) ? BigInt(v) : bad("a bigint or safe integer");
      const [lo, hi] = type === GgufValueType.UINT64 ? [0n, (1n << 64n) - 1n] : [-(1n << 63n), (1n << 63n) - 1n];
      if (big < lo || big > hi) bad(`a ${valueTypeName(type)} in [${lo}, ${hi}]`);
      return type === GgufValueType.UINT64 ? w.u64(big) : w.i64(big);
    }
    default:
      return bad(`a scalar type, not ${valueTypeName(type)}`);
  }
}

function writeMetadata(w: ByteWriter, m: GgufMetadataSpec): void {
  w.string(m.key);
  w.u32(m.type);
  const what = `metadata '${m.key}'`;
  if (m.type !== GgufValueType.ARRAY) {
    writeScalar(w, m.type, m.value as GgufScalarSpecValue, what);
    return;
  }
  const itemType = m.itemType;
  if (itemType === undefined || itemType === GgufValueType.ARRAY) {
    throw new RangeError(`GGUF writer: ${what}: an array needs a scalar itemType, got ${itemType === undefined ? "none" : "array"}`);
  }
  const items = m.value as ArrayLike<GgufScalarSpecValue>;
  if (typeof items !== "object" || items === null || typeof items.length !== "number") {
    throw new RangeError(`GGUF writer: ${what}: expected an array of ${valueTypeName(itemType)}, got ${typeof m.value}`);
  }
  w.u32(itemType);
  w.u64(BigInt(items.length));
  for (let i = 0; i < items.length; i++) writeScalar(w, itemType, items[i]!, `${what}[${i}]`);
}

/** Bytes a tensor of this shape and type occupies (rows × rowBytes). */
export function tensorByteSize(t: Pick<GgufTensorSpec, "name" | "shape" | "ggmlType">): number {
  const format = formatByGgmlType(t.ggmlType);
  if (!format) {
    throw new RangeError(`GGUF writer: tensor '${t.name}': unknown ggml type ${t.ggmlType}; allowed: ${FORMATS.filter((f) => !isOwnFormat(f)).map((f) => `${f.name} (${f.ggmlType})`).join(", ")}`);
  }
  if (t.shape.length < 1 || t.shape.length > MAX_TENSOR_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 1)) {
    throw new RangeError(`GGUF writer: tensor '${t.name}': shape [${t.shape.join(", ")}] must have 1..${MAX_TENSOR_DIMS} dimensions, each ≥ 1`);
  }
  const rows = t.shape.slice(1).reduce((a, b) => a * b, 1);
  return rows * rowBytes(format, t.shape[0]!);
}

function alignUp(x: number, alignment: number): number {
  return Math.ceil(x / alignment) * alignment;
}

/** Where everything goes: the encoded header and each tensor's absolute data offset. */
export interface GgufLayout {
  /** Header, metadata and tensor infos (without the padding up to dataOffset). */
  header: Uint8Array;
  dataOffset: number;
  /** Absolute offset of each tensor's data, in spec order. */
  tensorOffsets: number[];
  byteSizes: number[];
  fileSize: number;
}

/** Encode the header and place the tensors (spec order, each at the next aligned offset); no tensor data is touched. */
export function planGguf(spec: GgufSpec): GgufLayout {
  const alignment = spec.alignment ?? DEFAULT_ALIGNMENT;
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new RangeError(`GGUF writer: alignment ${alignment} is not a power of two`);
  }
  const metadata = [...spec.metadata];
  const given = metadata.find((m) => m.key === "general.alignment");
  if (given && given.value !== alignment) {
    throw new RangeError(`GGUF writer: general.alignment ${String(given.value)} disagrees with spec.alignment ${alignment}`);
  }
  if (!given && alignment !== DEFAULT_ALIGNMENT) metadata.push({ key: "general.alignment", type: GgufValueType.UINT32, value: alignment });
  const keys = new Set<string>();
  for (const m of metadata) {
    if (keys.has(m.key)) throw new RangeError(`GGUF writer: metadata key '${m.key}' appears twice`);
    keys.add(m.key);
  }

  const w = new ByteWriter();
  w.u32(GGUF_MAGIC);
  w.u32(spec.version ?? 3);
  w.u64(BigInt(spec.tensors.length));
  w.u64(BigInt(metadata.length));
  for (const m of metadata) writeMetadata(w, m);
  const byteSizes = spec.tensors.map(tensorByteSize);
  const relOffsets: number[] = [];
  const names = new Set<string>();
  let rel = 0;
  spec.tensors.forEach((t, i) => {
    if (names.has(t.name)) throw new RangeError(`GGUF writer: tensor name '${t.name}' appears twice`);
    names.add(t.name);
    w.string(t.name);
    w.u32(t.shape.length);
    for (const d of t.shape) w.u64(BigInt(d));
    w.u32(t.ggmlType);
    w.u64(BigInt(rel));
    relOffsets.push(rel);
    rel = alignUp(rel + byteSizes[i]!, alignment);
  });
  const header = w.result();
  const dataOffset = alignUp(header.length, alignment);
  const tensorOffsets = relOffsets.map((r) => dataOffset + r);
  const n = spec.tensors.length;
  const fileSize = n === 0 ? header.length : tensorOffsets[n - 1]! + byteSizes[n - 1]!;
  return { header, dataOffset, tensorOffsets, byteSizes, fileSize };
}

/** Stream the file into `sink`: header, then each tensor's data after zero padding. Returns the total byte count. */
export function serializeGguf(spec: GgufSpec, sink: (chunk: Uint8Array) => void): number {
  const layout = planGguf(spec);
  sink(layout.header);
  let written = layout.header.length;
  spec.tensors.forEach((t, i) => {
    const at = layout.tensorOffsets[i]!;
    if (at > written) sink(new Uint8Array(at - written));
    const data = typeof t.data === "function" ? t.data() : t.data;
    if (data.length !== layout.byteSizes[i]) {
      throw new RangeError(`GGUF writer: tensor '${t.name}' [${t.shape.join(", ")}] needs ${layout.byteSizes[i]} bytes of data, got ${data.length}`);
    }
    sink(data);
    written = at + data.length;
  });
  return written;
}

/** The whole file in memory (for small fixtures). */
export function encodeGguf(spec: GgufSpec): Uint8Array {
  const chunks: Uint8Array[] = [];
  const total = serializeGguf(spec, (c) => chunks.push(c));
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** Write the file tensor by tensor to `${path}.tmp-*`, then rename it to `path`. Returns the file size. */
export function writeGguf(path: string, spec: GgufSpec): number {
  const tmp = `${path}.tmp-${process.pid}-${Date.now().toString(36)}`;
  const fd = openSync(tmp, "w");
  try {
    const total = serializeGguf(spec, (chunk) => {
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done);
    });
    closeSync(fd);
    renameSync(tmp, path);
    return total;
  } catch (e) {
    try { closeSync(fd); } catch { /* already closed */ }
    try { unlinkSync(tmp); } catch { /* never created */ }
    throw e;
  }
}
