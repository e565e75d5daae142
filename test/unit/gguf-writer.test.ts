/**
 * GGUF writer: every metadata type and array item type round-trips through our reader; tensor data, alignment and
 * versions survive; writeGguf is atomic and lazy; node-llama-cpp's independent reader reads what we wrote.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { getFormat } from "../../src/formats/table.js";
import { parseGguf, readTensorData } from "../../src/gguf/reader.js";
import { bufferSource } from "../../src/gguf/source.js";
import { GgufValueType as T, type GgufValueType } from "../../src/gguf/types.js";
import { encodeGguf, writeGguf, type GgufMetadataSpec, type GgufSpec } from "../../src/gguf/writer.js";

const SCALARS: Array<[GgufValueType, string, unknown[]]> = [
  [T.UINT8, "u8", [0, 255]],
  [T.INT8, "i8", [-128, 127]],
  [T.UINT16, "u16", [0, 65535]],
  [T.INT16, "i16", [-32768, 32767]],
  [T.UINT32, "u32", [0, 4294967295]],
  [T.INT32, "i32", [-2147483648, 2147483647]],
  [T.FLOAT32, "f32", [Math.fround(-1.1), 3.4028234663852886e38]],
  [T.FLOAT64, "f64", [Math.PI, -5e-324]],
  [T.BOOL, "bool", [true, false]],
  [T.STRING, "str", ["", "▁Grüße, 世界 🦙"]],
  [T.UINT64, "u64", [0n, 2n ** 64n - 1n]],
  [T.INT64, "i64", [-(2n ** 63n), 2n ** 63n - 1n]],
];

function everyTypeMetadata(): GgufMetadataSpec[] {
  const m: GgufMetadataSpec[] = [];
  for (const [type, name, values] of SCALARS) {
    values.forEach((v, i) => m.push({ key: `scalar.${name}.${i}`, type, value: v as never }));
    m.push({ key: `array.${name}`, type: T.ARRAY, itemType: type, value: values as never });
    m.push({ key: `empty.${name}`, type: T.ARRAY, itemType: type, value: [] });
  }
  m.push({ key: "u64.from.number", type: T.UINT64, value: 12345 });
  m.push({ key: "typed.f32", type: T.ARRAY, itemType: T.FLOAT32, value: new Float32Array([0.5, -0.25, 1e-7]) });
  return m;
}

/** f32 [8, 2], f16 [4], q8_0 [64, 3] with recognisable bytes. */
function tensorsFixture(): GgufSpec["tensors"] {
  const q8 = getFormat("q8_0");
  const filled = (n: number, k: number) => Uint8Array.from({ length: n }, (_, i) => (i * k + 1) & 0xff);
  return [
    { name: "a.f32", shape: [8, 2], ggmlType: getFormat("f32").ggmlType, data: filled(64, 3) },
    { name: "b.f16", shape: [4], ggmlType: getFormat("f16").ggmlType, data: filled(8, 5) },
    { name: "c.q8_0", shape: [64, 3], ggmlType: q8.ggmlType, data: () => filled(3 * 2 * q8.bytesPerBlock, 7) },
  ];
}

const asPlain = (v: unknown): unknown => (ArrayBuffer.isView(v) ? Array.from(v as unknown as ArrayLike<unknown>) : v);

test("every scalar and array item type round-trips through encodeGguf and parseGguf", () => {
  const spec: GgufSpec = { metadata: everyTypeMetadata(), tensors: tensorsFixture() };
  const f = parseGguf(bufferSource(encodeGguf(spec)));
  assert.equal(f.metadata.size, spec.metadata.length);
  for (const m of spec.metadata) {
    const got = f.metadata.get(m.key);
    const want = m.type === T.UINT64 && typeof m.value === "number" ? BigInt(m.value) : m.value;
    assert.deepEqual(asPlain(got), asPlain(want), m.key);
    const entry = f.metadataEntries.get(m.key)!;
    assert.equal(entry.type, m.type, m.key);
    assert.equal(entry.itemType, m.itemType, m.key);
  }
  assert.ok(f.metadata.get("array.f32") instanceof Float32Array);
  assert.ok(f.metadata.get("array.u64") instanceof BigUint64Array);
  assert.ok(f.metadata.get("array.i8") instanceof Int8Array);
});

test("tensor data, shapes and types round-trip at alignment 32 and 64, in versions 2 and 3", () => {
  for (const [alignment, version] of [[32, 3], [64, 3], [32, 2]] as const) {
    const spec: GgufSpec = { metadata: [{ key: "general.architecture", type: T.STRING, value: "llama" }], tensors: tensorsFixture(), alignment, version };
    const bytes = encodeGguf(spec);
    const src = bufferSource(bytes);
    const f = parseGguf(src);
    assert.equal(f.version, version);
    assert.equal(f.alignment, alignment);
    assert.equal(f.metadata.get("general.alignment"), alignment === 32 ? undefined : alignment);
    spec.tensors.forEach((t, i) => {
      const got = f.tensors[i]!;
      assert.equal(got.name, t.name);
      assert.deepEqual(got.shape, t.shape);
      assert.equal(got.ggmlType, t.ggmlType);
      assert.equal(got.offset % alignment, 0);
      const want = typeof t.data === "function" ? t.data() : t.data;
      assert.deepEqual(readTensorData(src, got), want);
    });
    const last = f.tensors.at(-1)!;
    assert.equal(last.offset + last.byteSize, bytes.length);
  }
});

test("writeGguf writes the same bytes as encodeGguf, calls lazy data once, and leaves no temporary file", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-writer-"));
  try {
    const calls = new Map<string, number>();
    const spec: GgufSpec = {
      metadata: everyTypeMetadata(),
      tensors: tensorsFixture().map((t) => ({ ...t, data: () => {
        calls.set(t.name, (calls.get(t.name) ?? 0) + 1);
        return typeof t.data === "function" ? t.data() : t.data;
      } })),
    };
    const file = path.join(dir, "m.gguf");
    const size = writeGguf(file, spec);
    assert.deepEqual([...calls.values()], [1, 1, 1]);
    const onDisk = readFileSync(file);
    assert.equal(onDisk.length, size);
    assert.deepEqual(new Uint8Array(onDisk), encodeGguf(spec));
    assert.deepEqual(readdirSync(dir), ["m.gguf"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a failed write leaves neither the target nor a temporary file", () => {
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-writer-"));
  try {
    const tensors = tensorsFixture();
    tensors[2] = { ...tensors[2]!, data: new Uint8Array(5) };
    assert.throws(() => writeGguf(path.join(dir, "bad.gguf"), { metadata: [], tensors }), /c\.q8_0.*needs 204 bytes of data, got 5/);
    assert.deepEqual(readdirSync(dir), []);
    assert.equal(existsSync(path.join(dir, "bad.gguf")), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the writer refuses values outside their type, unknown tensor types, and duplicates, naming them", () => {
  const one = (m: GgufMetadataSpec) => () => encodeGguf({ metadata: [m], tensors: [] });
  assert.throws(one({ key: "k", type: T.UINT8, value: 256 }), /'k'.*uint8.*256/);
  assert.throws(one({ key: "k", type: T.INT32, value: 1.5 }), /'k'.*int32/);
  assert.throws(one({ key: "k", type: T.UINT64, value: -1n }), /'k'.*uint64/);
  assert.throws(one({ key: "k", type: T.STRING, value: 3 }), /'k'.*string/);
  assert.throws(one({ key: "arr", type: T.ARRAY, itemType: T.INT8, value: [1, 200] }), /'arr'\[1\]/);
  assert.throws(() => encodeGguf({ metadata: [{ key: "k", type: T.BOOL, value: true }, { key: "k", type: T.BOOL, value: false }], tensors: [] }), /'k' appears twice/);
  assert.throws(() => encodeGguf({ metadata: [], tensors: [{ name: "t", shape: [32], ggmlType: 99, data: new Uint8Array(0) }] }), /'t'.*99.*q8_0 \(8\)/);
  assert.throws(() => encodeGguf({ metadata: [], tensors: [{ name: "t", shape: [16], ggmlType: 8, data: new Uint8Array(0) }] }), /q8_0/);
});

test("node-llama-cpp's GGUF reader reads what the writer wrote", async () => {
  const { readGgufFileInfo } = await import("node-llama-cpp");
  const dir = mkdtempSync(path.join(tmpdir(), "kvsplit-writer-"));
  try {
    const metadata: GgufMetadataSpec[] = [
      { key: "general.architecture", type: T.STRING, value: "llama" },
      { key: "llama.context_length", type: T.UINT32, value: 4096 },
      { key: "llama.rope.freq_base", type: T.FLOAT32, value: 10000 },
      { key: "tokenizer.ggml.tokens", type: T.ARRAY, itemType: T.STRING, value: ["<unk>", "▁the", "é"] },
      { key: "tokenizer.ggml.scores", type: T.ARRAY, itemType: T.FLOAT32, value: [0, -1.5, -2] },
      { key: "tokenizer.ggml.add_bos_token", type: T.BOOL, value: true },
    ];
    const file = path.join(dir, "m.gguf");
    const spec: GgufSpec = { metadata, tensors: tensorsFixture(), alignment: 64 };
    writeGguf(file, spec);
    const theirs = await readGgufFileInfo(file, { logWarnings: false });
    const md = theirs.metadata as unknown as Record<string, Record<string, unknown>>;
    assert.equal(md.general!.architecture, "llama");
    assert.equal(md.general!.alignment, 64);
    assert.equal((md.llama as Record<string, unknown>).context_length, 4096);
    assert.deepEqual(Array.from((md.tokenizer!.ggml as Record<string, ArrayLike<unknown>>).tokens!), ["<unk>", "▁the", "é"]);
    assert.deepEqual(Array.from((md.tokenizer!.ggml as Record<string, ArrayLike<unknown>>).scores!), [0, -1.5, -2]);
    const ours = parseGguf(bufferSource(new Uint8Array(readFileSync(file))));
    const theirTensors = theirs.fullTensorInfo ?? [];
    assert.equal(theirTensors.length, 3);
    theirTensors.forEach((t, i) => {
      assert.equal(t.name, spec.tensors[i]!.name);
      assert.deepEqual(t.dimensions.map(Number), spec.tensors[i]!.shape);
      assert.equal(Number(t.fileOffset), ours.tensors[i]!.offset);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
