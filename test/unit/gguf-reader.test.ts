/**
 * GGUF reader: values from hand-assembled files (a byte builder independent of src/gguf/writer.ts), every error code
 * on a hostile variant, typed getters, files past 2 GiB, and the real stories260K file against node-llama-cpp's reader.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { closeSync, ftruncateSync, mkdtempSync, openSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { GgufError } from "../../src/gguf/errors.js";
import {
  MAX_ARRAY_LENGTH,
  MAX_METADATA_COUNT,
  MAX_STRING_BYTES,
  MAX_TENSOR_COUNT,
  metaBool,
  metaNumber,
  metaNumberArray,
  metaOptionalNumber,
  metaString,
  metaStringArray,
  parseGguf,
  readTensorData,
} from "../../src/gguf/reader.js";
import { bufferSource, fileSource } from "../../src/gguf/source.js";
import { GgufValueType as T } from "../../src/gguf/types.js";
import { planGguf } from "../../src/gguf/writer.js";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";

/** Little-endian byte assembly for hand-made GGUF files. */
class Raw {
  parts: number[] = [];
  u8(...v: number[]): this { this.parts.push(...v); return this; }
  u32(v: number): this { return this.u8(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff); }
  u64(v: bigint | number): this {
    let b = BigInt(v);
    for (let i = 0; i < 8; i++) { this.parts.push(Number(b & 0xffn)); b >>= 8n; }
    return this;
  }
  f32(v: number): this { const b = new Uint8Array(new Float32Array([v]).buffer); return this.u8(...b); }
  str(s: string): this { const b = new TextEncoder().encode(s); return this.u64(b.length).u8(...b); }
  header(version: number, nTensors: number | bigint, nKv: number | bigint): this {
    return this.u8(0x47, 0x47, 0x55, 0x46).u32(version).u64(nTensors).u64(nKv);
  }
  kvU32(key: string, v: number): this { return this.str(key).u32(T.UINT32).u32(v); }
  tensor(name: string, dims: (number | bigint)[], type: number, offset: number | bigint): this {
    this.str(name).u32(dims.length);
    for (const d of dims) this.u64(d);
    return this.u32(type).u64(offset);
  }
  padTo(alignment: number): this { while (this.parts.length % alignment) this.parts.push(0); return this; }
  zeros(n: number): this { for (let i = 0; i < n; i++) this.parts.push(0); return this; }
  get length(): number { return this.parts.length; }
  bytes(): Uint8Array { return Uint8Array.from(this.parts); }
}

function parse(bytes: Uint8Array) {
  return parseGguf(bufferSource(bytes, "fixture.gguf"));
}

function expectGgufError(bytes: Uint8Array, code: GgufError["code"], offset?: number, mentions: string[] = []): GgufError {
  let caught: unknown;
  try {
    parse(bytes);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof GgufError, `expected GgufError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  if (offset !== undefined) assert.equal(caught.offset, offset, caught.message);
  assert.match(caught.message, /fixture\.gguf/);
  assert.match(caught.message, /expected .+, found .+/);
  for (const m of mentions) assert.ok(caught.message.includes(m), `'${m}' missing from: ${caught.message}`);
  return caught;
}

/** One f32 [4, 2] tensor 'w' (32 bytes) after the given metadata. */
function oneTensorFile(version = 3, addMeta: (r: Raw) => number = () => 0, tensorType = 0, dims: number[] = [4, 2], relOffset = 0): Uint8Array {
  const meta = new Raw();
  const nKv = addMeta(meta);
  const r = new Raw().header(version, 1, nKv).u8(...meta.parts).tensor("w", dims, tensorType, relOffset).padTo(32);
  for (let i = 0; i < 32 + relOffset; i++) r.u8(i & 0xff);
  return r.bytes();
}

test("reads every scalar metadata type and a tensor from a hand-assembled v3 file", () => {
  const r = new Raw();
  const kv = (key: string, type: number, write: () => void) => { r.str(key).u32(type); write(); };
  kv("u8", T.UINT8, () => r.u8(250));
  kv("i8", T.INT8, () => r.u8(0x80));
  kv("u16", T.UINT16, () => r.u8(0x34, 0x12));
  kv("i16", T.INT16, () => r.u8(0xfe, 0xff));
  kv("u32", T.UINT32, () => r.u32(0xfffffff0));
  kv("i32", T.INT32, () => r.u32(0xffffff85));
  kv("f32", T.FLOAT32, () => r.f32(0.15625));
  kv("bool", T.BOOL, () => r.u8(1));
  kv("str", T.STRING, () => r.str("héllo ▁wörld"));
  kv("u64", T.UINT64, () => r.u64(0xffffffffffffffffn));
  kv("i64", T.INT64, () => r.u64(0xfffffffffffffffen));
  kv("f64", T.FLOAT64, () => r.u8(...new Uint8Array(new Float64Array([-1e300]).buffer)));
  kv("arr.f32", T.ARRAY, () => r.u32(T.FLOAT32).u64(3).f32(1).f32(-2.5).f32(0.25));
  kv("arr.str", T.ARRAY, () => r.u32(T.STRING).u64(2).str("<s>").str(""));
  kv("arr.nested", T.ARRAY, () => r.u32(T.ARRAY).u64(1).u32(T.INT8).u64(2).u8(1, 0xff));
  const bytes = new Raw().header(3, 1, 15).u8(...r.parts).tensor("w", [4, 2], 0, 0).padTo(32).zeros(32).bytes();
  const f = parse(bytes);
  const m = f.metadata;
  assert.equal(m.get("u8"), 250);
  assert.equal(m.get("i8"), -128);
  assert.equal(m.get("u16"), 0x1234);
  assert.equal(m.get("i16"), -2);
  assert.equal(m.get("u32"), 0xfffffff0);
  assert.equal(m.get("i32"), -123);
  assert.equal(m.get("f32"), 0.15625);
  assert.equal(m.get("bool"), true);
  assert.equal(m.get("str"), "héllo ▁wörld");
  assert.equal(m.get("u64"), 0xffffffffffffffffn);
  assert.equal(m.get("i64"), -2n);
  assert.equal(m.get("f64"), -1e300);
  assert.deepEqual(m.get("arr.f32"), new Float32Array([1, -2.5, 0.25]));
  assert.deepEqual(m.get("arr.str"), ["<s>", ""]);
  assert.deepEqual(m.get("arr.nested"), [new Int8Array([1, -1])]);
  assert.deepEqual(f.metadataEntries.get("arr.f32"), { type: T.ARRAY, itemType: T.FLOAT32, offset: f.metadataEntries.get("arr.f32")!.offset });
  assert.equal(f.version, 3);
  assert.equal(f.alignment, 32);
  assert.equal(f.tensors.length, 1);
  const w = f.tensors[0]!;
  assert.deepEqual(w.shape, [4, 2]);
  assert.equal(w.format.name, "f32");
  assert.equal(w.byteSize, 32);
  assert.equal(w.nElements, 8);
  assert.equal(w.offset, f.dataOffset);
  assert.equal(f.dataOffset % 32, 0);
  assert.equal(f.dataOffset + 32, bytes.length);
});

test("v2 is read; v1, unknown and big-endian versions are rejected as unsupported_version", () => {
  assert.equal(parse(oneTensorFile(2)).version, 2);
  expectGgufError(oneTensorFile(1), "unsupported_version", 4, ["v1"]);
  expectGgufError(oneTensorFile(4), "unsupported_version", 4);
  expectGgufError(oneTensorFile(0x03000000), "unsupported_version", 4, ["big-endian"]);
});

test("not_gguf for a wrong magic and for files shorter than the magic", () => {
  const b = oneTensorFile();
  b[0] = 0x00;
  expectGgufError(b, "not_gguf", 0);
  expectGgufError(new Uint8Array(0), "not_gguf", 0);
  expectGgufError(new Uint8Array([0x47, 0x47]), "not_gguf", 0);
});

test("every truncation inside the header, metadata or tensor table is a truncated error; inside the data, out_of_bounds", () => {
  const meta = (r: Raw) => { r.kvU32("a", 1).str("s").u32(T.STRING).str("text").str("arr").u32(T.ARRAY).u32(T.UINT16).u64(2).u8(1, 2, 3, 4); return 3; };
  const full = oneTensorFile(3, meta);
  const metaRaw = new Raw();
  meta(metaRaw);
  // header 24 + metadata + tensor info (name 8+1, n_dims 4, 2 dims 16, type 4, offset 8)
  const tableEnd = 24 + metaRaw.length + 9 + 4 + 16 + 4 + 8;
  assert.equal(parse(full).tensors.length, 1);
  for (let n = 4; n < full.length; n++) {
    const e = expectGgufError(full.subarray(0, n), n < tableEnd ? "truncated" : "out_of_bounds");
    assert.ok(e.offset <= n, `${n}: offset ${e.offset}`);
  }
});

test("limits: string length, array length, metadata count, tensor count, dimensions", () => {
  expectGgufError(new Raw().header(3, 0, 1).u64(MAX_STRING_BYTES + 1).bytes(), "limit_exceeded", 24);
  expectGgufError(new Raw().header(3, 0, 1).str("k").u32(T.STRING).u64(MAX_STRING_BYTES + 1).bytes(), "limit_exceeded", 37);
  expectGgufError(new Raw().header(3, 0, 1).str("k").u32(T.ARRAY).u32(T.UINT8).u64(MAX_ARRAY_LENGTH + 1).bytes(), "limit_exceeded");
  // An array length the file cannot hold is caught before allocating.
  expectGgufError(new Raw().header(3, 0, 1).str("k").u32(T.ARRAY).u32(T.STRING).u64(1000).zeros(64).bytes(), "truncated");
  expectGgufError(new Raw().header(3, 0, MAX_METADATA_COUNT + 1).bytes(), "limit_exceeded", 16);
  expectGgufError(new Raw().header(3, MAX_TENSOR_COUNT + 1, 0).bytes(), "limit_exceeded", 8);
  expectGgufError(new Raw().header(3, 0xffffffffffffffffn, 0).bytes(), "limit_exceeded", 8);
  expectGgufError(oneTensorFile(3, undefined, 0, [2, 2, 1, 1, 2]), "limit_exceeded", undefined, ["at most 4"]);
  expectGgufError(oneTensorFile(3, undefined, 0, [2 ** 30, 2 ** 30, 2 ** 30]), "limit_exceeded");
  // Nesting beyond MAX_ARRAY_NESTING is refused instead of recursing.
  const deep = new Raw().header(3, 0, 1).str("k").u32(T.ARRAY);
  for (let i = 0; i < 50; i++) deep.u32(T.ARRAY).u64(1);
  expectGgufError(deep.zeros(16).bytes(), "limit_exceeded", undefined, ["nested"]);
});

test("bad values: zero dimensions, bool 2, invalid UTF-8, unknown value type, duplicate key, ragged row", () => {
  expectGgufError(oneTensorFile(3, undefined, 0, [4, 0]), "bad_value", undefined, ["dimension 1"]);
  expectGgufError(oneTensorFile(3, undefined, 0, []), "bad_value");
  expectGgufError(oneTensorFile(3, (r) => { r.str("b").u32(T.BOOL).u8(2); return 1; }), "bad_value", undefined, ["bool"]);
  expectGgufError(oneTensorFile(3, (r) => { r.str("s").u32(T.STRING).u64(2).u8(0xc3, 0x28); return 1; }), "bad_value", undefined, ["UTF-8"]);
  expectGgufError(oneTensorFile(3, (r) => { r.str("x").u32(13).u32(0); return 1; }), "bad_value", 24 + 9, ["13"]);
  expectGgufError(oneTensorFile(3, (r) => { r.kvU32("a", 1).kvU32("a", 2); return 2; }), "bad_value", undefined, ["'a'"]);
  // q8_0 rows must be whole 32-value blocks.
  expectGgufError(oneTensorFile(3, undefined, 8, [48, 1]), "bad_value", undefined, ["q8_0", "48"]);
});

test("unknown tensor types name the supported types", () => {
  // 16 is llama.cpp's iq2_xxs, which kvsplit does not read.
  const e = expectGgufError(oneTensorFile(3, undefined, 16), "unknown_tensor_type", undefined, ["ggml type 16"]);
  for (const name of ["f32 (0)", "f16 (1)", "q8_0 (8)", "q4_0 (2)"]) assert.ok(e.message.includes(name), e.message);
});

test("alignment: general.alignment honoured, non-powers of two and misaligned offsets rejected", () => {
  const a64 = oneTensorFile(3, (r) => { r.kvU32("general.alignment", 64); return 1; });
  // oneTensorFile pads to 32 only: make the file long enough for the 64-aligned data.
  const grown = new Uint8Array(a64.length + 64);
  grown.set(a64);
  const f = parse(grown);
  assert.equal(f.alignment, 64);
  assert.equal(f.dataOffset % 64, 0);
  for (const bad of [0, 3, 48]) {
    expectGgufError(oneTensorFile(3, (r) => { r.kvU32("general.alignment", bad); return 1; }), "bad_alignment", 24 + 8 + 17 + 4, [String(bad)]);
  }
  expectGgufError(oneTensorFile(3, (r) => { r.str("general.alignment").u32(T.STRING).str("32"); return 1; }), "bad_alignment");
  expectGgufError(oneTensorFile(3, undefined, 0, [4, 2], 16), "bad_alignment", undefined, ["multiple of the alignment 32"]);
});

test("duplicate tensor names, out-of-file and overlapping tensor data are rejected", () => {
  const two = (second: string, secondOffset: number, dataBytes: number) =>
    new Raw().header(3, 2, 0).tensor("a", [8], 0, 0).tensor(second, [8], 0, secondOffset).padTo(32).zeros(dataBytes).bytes();
  assert.equal(parse(two("b", 32, 64)).tensors[1]!.offset, parse(two("b", 32, 64)).dataOffset + 32);
  expectGgufError(two("a", 32, 64), "duplicate_tensor", undefined, ["'a'"]);
  expectGgufError(two("b", 32, 63), "out_of_bounds", undefined, ["'b'"]);
  expectGgufError(two("b", 0, 64), "out_of_bounds", undefined, ["overlap"]);
  expectGgufError(new Raw().header(3, 1, 0).tensor("a", [8], 0, 2n ** 60n).padTo(32).zeros(32).bytes(), "out_of_bounds");
});

test("typed getters convert numbers and name the key, expected and found types", () => {
  const f = parse(oneTensorFile(3, (r) => {
    r.kvU32("n", 7).str("s").u32(T.STRING).str("llama").str("big").u32(T.UINT64).u64(2n ** 60n).str("i64").u32(T.INT64).u64(42)
      .str("f").u32(T.FLOAT32).f32(0.5).str("b").u32(T.BOOL).u8(0)
      .str("toks").u32(T.ARRAY).u32(T.STRING).u64(1).str("a")
      .str("u64s").u32(T.ARRAY).u32(T.UINT64).u64(2).u64(3).u64(4);
    return 8;
  }));
  assert.equal(metaNumber(f, "n"), 7);
  assert.equal(metaNumber(f, "i64"), 42);
  assert.equal(metaNumber(f, "f"), 0.5);
  assert.equal(metaString(f, "s"), "llama");
  assert.equal(metaBool(f, "b"), false);
  assert.deepEqual(metaStringArray(f, "toks"), ["a"]);
  assert.deepEqual(metaNumberArray(f, "u64s"), new Float64Array([3, 4]));
  assert.equal(metaOptionalNumber(f, "absent"), undefined);
  const wrong = (fn: () => unknown, code: string, ...mentions: string[]) => {
    assert.throws(fn, (e: unknown) => {
      assert.ok(e instanceof GgufError);
      assert.equal(e.code, code);
      for (const m of mentions) assert.ok(e.message.includes(m), e.message);
      return true;
    });
  };
  wrong(() => metaNumber(f, "s"), "wrong_type", "'s'", "found string", "number");
  wrong(() => metaString(f, "n"), "wrong_type", "'n'", "found uint32");
  wrong(() => metaNumber(f, "big"), "wrong_type", "'big'", "uint64");
  wrong(() => metaStringArray(f, "u64s"), "wrong_type", "array of uint64");
  wrong(() => metaOptionalNumber(f, "toks"), "wrong_type", "array of string");
  wrong(() => metaString(f, "general.architecture"), "missing_key", "'general.architecture'");
});

test("a sparse file past 2 GiB: tensor data beyond 2^31 is located and read", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-gguf-"));
  const file = path.join(dir, "big.gguf");
  try {
    const bigRows = 2 ** 19 + 3; // f32 [1024, bigRows]: just over 2 GiB
    const spec = {
      metadata: [{ key: "general.architecture", type: T.STRING, value: "llama" }],
      tensors: [
        { name: "big", shape: [1024, bigRows], ggmlType: 0, data: () => { throw new Error("not written"); } },
        { name: "tail", shape: [8], ggmlType: 0, data: new Uint8Array(0) },
      ],
    };
    const layout = planGguf(spec);
    assert.ok(layout.tensorOffsets[1]! > 2 ** 31);
    const fd = openSync(file, "w");
    const tail = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]).buffer);
    try {
      writeSync(fd, layout.header, 0, layout.header.length, 0);
      ftruncateSync(fd, layout.fileSize);
      writeSync(fd, tail, 0, tail.length, layout.tensorOffsets[1]!);
    } finally {
      closeSync(fd);
    }
    const src = fileSource(file);
    try {
      const f = parseGguf(src);
      assert.equal(f.fileSize, layout.fileSize);
      const t = f.tensors[1]!;
      assert.equal(t.offset, layout.tensorOffsets[1]);
      assert.deepEqual(new Float32Array(readTensorData(src, t).slice().buffer), new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]));
    } finally {
      src.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("stories260K.gguf: metadata and tensor table agree with node-llama-cpp's GGUF reader", { skip: sharedSkip(sharedPaths.stories260K) }, async () => {
  const { readGgufFileInfo } = await import("node-llama-cpp");
  const theirs = await readGgufFileInfo(sharedPaths.stories260K, { logWarnings: false });
  const src = fileSource(sharedPaths.stories260K);
  try {
    const f = parseGguf(src);
    assert.equal(f.version, theirs.version);
    assert.equal(f.tensors.length, Number(theirs.tensorCount));
    const theirTensors = theirs.fullTensorInfo ?? [];
    assert.equal(theirTensors.length, f.tensors.length);
    f.tensors.forEach((t, i) => {
      const o = theirTensors[i]!;
      assert.equal(t.name, o.name);
      assert.deepEqual(t.shape, o.dimensions.map(Number));
      assert.equal(t.ggmlType, o.ggmlType);
      assert.equal(t.offset, Number(o.fileOffset));
      assert.ok(t.offset + t.byteSize <= f.fileSize);
    });
    // Every metadata value, looked up by its dotted key in their nested object.
    for (const [key, value] of f.metadata) {
      const theirValue = key.split(".").reduce<unknown>((o, k) => (o as Record<string, unknown>)[k], theirs.metadata);
      const ours = ArrayBuffer.isView(value) ? Array.from(value as Float32Array) : value;
      assert.deepEqual(ours, Array.isArray(theirValue) ? Array.from(theirValue) : theirValue, key);
    }
    assert.equal(metaNumber(f, "llama.embedding_length"), 64);
    assert.equal(metaNumber(f, "llama.block_count"), 5);
    assert.equal(metaStringArray(f, "tokenizer.ggml.tokens").length, 512);
    assert.equal(f.tensors.find((t) => t.name === "output.weight"), undefined);
  } finally {
    src.close();
  }
});
