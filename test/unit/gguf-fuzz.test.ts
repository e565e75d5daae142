/**
 * Fuzzing the GGUF reader: byte flips, interesting values written into length/count/type/offset fields, insertions,
 * deletions and truncations of real fixtures (small synthetic models, and stories260K.gguf when ../shared is present).
 * Every case must either parse into a self-consistent file or throw a GgufError: no other exception, no runaway case.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { rowBytes } from "../../src/formats/table.js";
import { GgufError, type GgufErrorCode } from "../../src/gguf/errors.js";
import { parseGguf } from "../../src/gguf/reader.js";
import { bufferSource } from "../../src/gguf/source.js";
import { GgufValueType as T, type GgufFile } from "../../src/gguf/types.js";
import { synthLlama } from "../../src/gguf/synth.js";
import { encodeGguf } from "../../src/gguf/writer.js";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { seededRandom } from "../helpers/random.js";

const CODES: readonly GgufErrorCode[] = [
  "not_gguf", "unsupported_version", "truncated", "limit_exceeded", "bad_value", "out_of_bounds",
  "unknown_tensor_type", "duplicate_tensor", "bad_alignment",
];
/** A single parse of these small files takes well under a millisecond; anything near this means a runaway loop. */
const RUNAWAY_CASE_MS = 2000;

interface Field {
  offset: number;
  bytes: 4 | 8;
}

/**
 * Offsets of the structural fields (counts, string lengths, value types, array lengths, dimension counts, dimensions,
 * tensor types, data offsets) of a well-formed file, found by a walk independent of the reader.
 */
function structuralFields(b: Uint8Array): { fields: Field[]; headerEnd: number } {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const fields: Field[] = [{ offset: 4, bytes: 4 }, { offset: 8, bytes: 8 }, { offset: 16, bytes: 8 }];
  let p = 24;
  const u32 = (): number => { const x = v.getUint32(p, true); p += 4; return x; };
  const u64 = (): number => { const x = Number(v.getBigUint64(p, true)); p += 8; return x; };
  const str = (): void => {
    fields.push({ offset: p, bytes: 8 });
    const len = u64(); // advances p past the length first
    p += len;
  };
  const fixed: Record<number, number> = { 0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8 };
  const value = (type: number): void => {
    if (type === T.STRING) str();
    else if (type === T.ARRAY) {
      fields.push({ offset: p, bytes: 4 }, { offset: p + 4, bytes: 8 });
      const item = u32();
      const n = u64();
      if (fixed[item] !== undefined) p += n * fixed[item]!;
      else for (let i = 0; i < n; i++) value(item);
    } else p += fixed[type]!;
  };
  const nTensors = Number(v.getBigUint64(8, true));
  const nKv = Number(v.getBigUint64(16, true));
  for (let i = 0; i < nKv; i++) {
    str();
    fields.push({ offset: p, bytes: 4 });
    value(u32());
  }
  for (let i = 0; i < nTensors; i++) {
    str();
    fields.push({ offset: p, bytes: 4 });
    const nDims = u32();
    for (let d = 0; d < nDims; d++) { fields.push({ offset: p, bytes: 8 }); p += 8; }
    fields.push({ offset: p, bytes: 4 }, { offset: p + 4, bytes: 8 });
    p += 12;
  }
  return { fields, headerEnd: p };
}

const INTERESTING = [0n, 1n, 2n, 3n, 4n, 5n, 7n, 8n, 9n, 12n, 13n, 31n, 32n, 33n, 64n, 255n, 256n, 0x7fffn, 0xffffn,
  0x7fffffffn, 0x80000000n, 0xffffffffn, 0x100000000n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];

type Mutation = (b: Uint8Array, r: () => number) => Uint8Array;

function pick<T>(xs: readonly T[], r: () => number): T {
  return xs[Math.floor(r() * xs.length)]!;
}

function mutators(fields: Field[], headerEnd: number): Array<[string, Mutation]> {
  /** Mostly inside the header and tensor table, sometimes anywhere. */
  const pos = (b: Uint8Array, r: () => number) => Math.floor(r() * (r() < 0.9 ? Math.min(headerEnd, b.length) : b.length));
  return [
    ["flip", (b, r) => {
      const out = b.slice();
      const n = 1 + Math.floor(r() * 8);
      for (let i = 0; i < n; i++) out[pos(out, r)] = r() < 0.5 ? Math.floor(r() * 256) : out[pos(out, r)]! ^ (1 << Math.floor(r() * 8));
      return out;
    }],
    ["field", (b, r) => {
      const out = b.slice();
      const f = pick(fields, r);
      if (f.offset + f.bytes > out.length) return out; // an earlier step shortened the file
      const v = new DataView(out.buffer);
      const old = f.bytes === 4 ? BigInt(v.getUint32(f.offset, true)) : v.getBigUint64(f.offset, true);
      const choice = r();
      let x = choice < 0.6 ? pick(INTERESTING, r) : choice < 0.8 ? old + BigInt(Math.floor(r() * 65) - 32) : BigInt(Math.floor(r() * 2 ** 32)) * BigInt(Math.floor(r() * 2 ** 20) + 1);
      const mask = f.bytes === 4 ? 0xffffffffn : 2n ** 64n - 1n;
      x = ((x % (mask + 1n)) + (mask + 1n)) % (mask + 1n);
      if (f.bytes === 4) v.setUint32(f.offset, Number(x), true);
      else v.setBigUint64(f.offset, x, true);
      return out;
    }],
    ["insert", (b, r) => {
      const at = pos(b, r);
      const n = 1 + Math.floor(r() * 16);
      const out = new Uint8Array(b.length + n);
      out.set(b.subarray(0, at));
      for (let i = 0; i < n; i++) out[at + i] = Math.floor(r() * 256);
      out.set(b.subarray(at), at + n);
      return out;
    }],
    ["delete", (b, r) => {
      const at = pos(b, r);
      const n = Math.min(1 + Math.floor(r() * 16), b.length - at);
      const out = new Uint8Array(b.length - n);
      out.set(b.subarray(0, at));
      out.set(b.subarray(at + n), at);
      return out;
    }],
    ["truncate", (b, r) => b.slice(0, r() < 0.8 ? Math.floor(r() * Math.min(headerEnd + 64, b.length)) : Math.floor(r() * b.length))],
  ];
}

/** A parsed file must describe only tensors that lie, aligned and disjoint, inside it. */
function assertSelfConsistent(f: GgufFile, size: number, label: string): void {
  assert.equal(f.fileSize, size, label);
  assert.ok(f.alignment > 0 && (f.alignment & (f.alignment - 1)) === 0, label);
  assert.ok(f.dataOffset % f.alignment === 0, label);
  const names = new Set<string>();
  const spans = f.tensors.map((t) => {
    assert.ok(!names.has(t.name), `${label}: duplicate ${t.name}`);
    names.add(t.name);
    assert.ok(t.shape.length >= 1 && t.shape.length <= 4 && t.shape.every((d) => Number.isSafeInteger(d) && d >= 1), label);
    assert.equal(t.nElements, t.shape.reduce((a, b) => a * b, 1), label);
    assert.equal(t.byteSize, (t.nElements / t.shape[0]!) * rowBytes(t.format, t.shape[0]!), label);
    assert.ok(t.offset >= f.dataOffset && (t.offset - f.dataOffset) % f.alignment === 0, `${label}: ${t.name} offset ${t.offset}`);
    assert.ok(t.offset + t.byteSize <= size, `${label}: ${t.name} [${t.offset}, ${t.offset + t.byteSize}) outside ${size}`);
    return [t.offset, t.offset + t.byteSize] as const;
  });
  spans.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i]![0] >= spans[i - 1]![1], `${label}: overlapping tensors`);
}

interface FuzzTally {
  parsed: number;
  rejected: Map<string, number>;
}

function fuzz(fixture: Uint8Array, name: string, cases: number, seed: number): FuzzTally {
  const { fields, headerEnd } = structuralFields(fixture);
  assertSelfConsistent(parseGguf(bufferSource(fixture, name)), fixture.length, `${name} unmutated`);
  const ops = mutators(fields, headerEnd);
  const r = seededRandom(seed);
  const tally: FuzzTally = { parsed: 0, rejected: new Map() };
  for (let c = 0; c < cases; c++) {
    let bytes = fixture;
    const steps = r() < 0.8 ? 1 : 2 + Math.floor(r() * 2);
    const applied: string[] = [];
    for (let s = 0; s < steps; s++) {
      const [opName, op] = pick(ops, r);
      bytes = op(bytes, r);
      applied.push(opName);
    }
    const label = `${name} case ${c} (${applied.join("+")}, seed ${seed})`;
    const started = performance.now();
    try {
      const f = parseGguf(bufferSource(bytes, label));
      assertSelfConsistent(f, bytes.length, label);
      tally.parsed++;
    } catch (e) {
      if (e instanceof assert.AssertionError) throw e;
      assert.ok(e instanceof GgufError, `${label}: threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
      assert.ok(CODES.includes(e.code), `${label}: code ${e.code}`);
      assert.ok(e.offset >= 0 && e.offset <= bytes.length, `${label}: offset ${e.offset} outside the ${bytes.length}-byte file`);
      tally.rejected.set(e.code, (tally.rejected.get(e.code) ?? 0) + 1);
    }
    const ms = performance.now() - started;
    assert.ok(ms < RUNAWAY_CASE_MS, `${label}: runaway parse (${ms.toFixed(0)} ms)`);
  }
  return tally;
}

function report(t: { diagnostic(msg: string): void }, name: string, tally: FuzzTally): void {
  t.diagnostic(`${name}: parsed ${tally.parsed}, rejected ${JSON.stringify(Object.fromEntries(tally.rejected))}`);
}

const hasShared = sharedSkip(sharedPaths.stories260K) === false;
/** 20,000 cases in all (at least 10,000 required): the synthetic fixtures carry them all when stories260K is absent. */
const SYNTH_CASES = hasShared ? 6000 : 10000;

test("mutated synthetic models (v3 q8_0; v2 f16 at alignment 64) parse consistently or throw GgufError", (t) => {
  const small = { dim: 64, nLayers: 1, nHeads: 2, nKvHeads: 1, ffnDim: 64, vocabSize: 300, contextLength: 64 };
  const q8 = encodeGguf(synthLlama({ preset: small, type: "q8_0", seed: 1 }));
  const f16Spec = { ...synthLlama({ preset: { ...small, tiedOutput: true }, type: "f16", seed: 2 }), alignment: 64, version: 2 as const };
  const f16 = encodeGguf(f16Spec);
  for (const [name, bytes, seed] of [["synth-q8_0", q8, 101], ["synth-f16-v2-a64", f16, 202]] as const) {
    const tally = fuzz(bytes, name, SYNTH_CASES, seed);
    report(t, name, tally);
    // The mutations reach many distinct checks, and some mutants (e.g. flipped weight bytes) still parse.
    assert.ok(tally.rejected.size >= 6, JSON.stringify(Object.fromEntries(tally.rejected)));
    assert.ok(tally.parsed > 0);
  }
});

test("mutated stories260K.gguf parses consistently or throws GgufError", { skip: sharedSkip(sharedPaths.stories260K) }, (t) => {
  const bytes = new Uint8Array(readFileSync(sharedPaths.stories260K));
  const tally = fuzz(bytes, "stories260K", 8000, 303);
  report(t, "stories260K", tally);
  assert.ok(tally.rejected.size >= 6, JSON.stringify(Object.fromEntries(tally.rejected)));
});
