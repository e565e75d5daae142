/**
 * The two kernel builds (src/runtime/wasm.ts): build/kernels.wasm (plain SIMD) and build/kernels-relaxed.wasm (the
 * same source with relaxed SIMD, whose K-quant, q8_0, q4_0 / q4_1 / q5_0 / q5_1 and iq4_nl / iq3_nl / iq2_nl weight
 * dots use relaxed i8 × i7 dots).
 *   1. selection: the hand-written probe module agrees with the relaxed build's own validation; the process uses the
 *      relaxed build exactly where the runtime ships relaxed SIMD (Node 20: never, even with its experimental flag)
 *      unless KVSPLIT_WASM_RELAXED forces a build (=0 plain, =1 relaxed, an error where unsupported); runtimes
 *      instantiate the chosen module.
 *   2. where the runtime ships relaxed SIMD: both builds, loaded side by side (each on its own memory, the same
 *      inputs), give Object.is-identical outputs for every kernel with a relaxed path (dot, matvec, matmul,
 *      matmulWide of q2_K .. q6_K over 1, 2 and 9 super-blocks; matvec and matmul of q8_0, q4_0, q4_1, q5_0, q5_1,
 *      iq4_nl and the codebook formats over 1, 3, 4, 9 blocks, and matmulWide of the q8_0-partner ones, q8_0, q4_0,
 *      q5_0 and iq4_nl, whose int8 layout moves w's sign onto x), 1..9 tokens and odd row ranges, with quantized rows, random
 *      bytes and all-extreme bytes (levels, scales and mins at their ends), and activations at −128 / 127 (−127 for
 *      q8_0 and the table formats, whose relaxed dots need x within ±127: quantizeRow_q8_0 writes −128 only in a
 *      block whose fp16 scale is 0, whose terms are ±0 either way, tested here on extreme rows); and they equal the scalar reference
 *      within the bound the other kernel tests use. Where it does not (Node 20), the relaxed build must
 *      fail to compile there and the plain one is in use.
 *   3. where supported, 2. holds under each of V8's WebAssembly compilers alone (Liftoff without tier-up, TurboFan
 *      only): this file re-run in child processes with those flags (Node 20's Liftoff got relaxed dots wrong).
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { getFormat, getKvFormat, rowBytes } from "../../src/formats/table.js";
import type { BlockFormat, KvFormatName } from "../../src/formats/types.js";
import { KvCache } from "../../src/kv/cache.js";
import {
  RELAXED_ENV, WasmRuntime, defaultRuntime, kernelModule, kernelVariant, loadKernelModule, relaxedSimdSupported, selectKernelVariant,
} from "../../src/runtime/wasm.js";
import { f16BitsToF32, f32ToF16Bits, writeF16 } from "../../src/formats/reference/scalar.js";
import { wideRowBytes } from "../../src/model/linear.js";
import { dotTolerance, referenceDequantize, referenceQuantize } from "../helpers/format-reference.js";
import { seededRandom } from "../helpers/random.js";
import { q8KInQuadOrder } from "../helpers/quad-order.js";

const buildFile = (name: string) => fileURLToPath(new URL(`../../../build/${name}`, import.meta.url));
const wasmModuleUrl = new URL("../../src/runtime/wasm.js", import.meta.url).href;
const nodeMajor = Number(process.versions.node.split(".")[0]);
const supported = relaxedSimdSupported();
/** Set in the child processes of the compiler test: they run this file's other tests only. */
const TIER_CHILD_ENV = "KVSPLIT_TEST_RELAXED_TIER_CHILD";

/** kernelVariant() of a fresh Node process (node flags, KVSPLIT_WASM_RELAXED = value): its stdout, or the error it exits with. */
function childVariant(value: string, flags: string[] = []): { variant?: string; error?: string } {
  const script = `import { kernelVariant } from ${JSON.stringify(wasmModuleUrl)}; process.stdout.write(kernelVariant());`;
  try {
    const out = execFileSync(process.execPath, [...flags, "--input-type=module", "-e", script], {
      env: { ...process.env, [RELAXED_ENV]: value }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"],
    });
    return { variant: out };
  } catch (e) {
    return { error: String((e as { stderr?: string }).stderr) };
  }
}

describe("kernel build selection (plain or relaxed SIMD)", () => {
  it("the relaxed-SIMD probe agrees with validating build/kernels-relaxed.wasm; the plain build validates everywhere", () => {
    assert.equal(WebAssembly.validate(readFileSync(buildFile("kernels.wasm"))), true);
    assert.equal(WebAssembly.validate(readFileSync(buildFile("kernels-relaxed.wasm"))), supported);
    // Node 20's V8 has relaxed SIMD only behind a flag (and its baseline compiler got the dots wrong); later Nodes ship it
    if (nodeMajor <= 20) assert.equal(supported, false, `Node ${process.versions.node} should not report relaxed SIMD`);
    else assert.equal(supported, true, `Node ${process.versions.node} should report relaxed SIMD`);
  });

  it(`${RELAXED_ENV}: unset picks relaxed only where supported, 0 forces plain, 1 forces relaxed or fails clearly`, () => {
    for (const has of [true, false]) {
      assert.equal(selectKernelVariant({}, has), has ? "relaxed" : "plain");
      assert.equal(selectKernelVariant({ [RELAXED_ENV]: "" }, has), has ? "relaxed" : "plain");
      assert.equal(selectKernelVariant({ [RELAXED_ENV]: "0" }, has), "plain");
      assert.throws(() => selectKernelVariant({ [RELAXED_ENV]: "yes" }, has), /KVSPLIT_WASM_RELAXED must be 0 .* or 1 .*, got 'yes'/);
    }
    assert.equal(selectKernelVariant({ [RELAXED_ENV]: "1" }, true), "relaxed");
    assert.throws(() => selectKernelVariant({ [RELAXED_ENV]: "1" }, false), /KVSPLIT_WASM_RELAXED=1 but this runtime .* does not support WebAssembly relaxed SIMD/);
  });

  it("this process and its runtimes use the selected build; a fresh process honours the variable", () => {
    assert.equal(kernelVariant(), selectKernelVariant());
    if (process.env[RELAXED_ENV] === undefined) assert.equal(kernelVariant(), supported ? "relaxed" : "plain");
    assert.equal(kernelModule(), loadKernelModule(kernelVariant()));
    assert.equal(defaultRuntime().module, kernelModule());
    assert.equal(new WasmRuntime().module, kernelModule());

    assert.deepEqual(childVariant("0"), { variant: "plain" });
    assert.deepEqual(childVariant(""), { variant: supported ? "relaxed" : "plain" });
    const forced = childVariant("1");
    if (supported) assert.deepEqual(forced, { variant: "relaxed" });
    else assert.match(forced.error ?? "", /KVSPLIT_WASM_RELAXED=1 but this runtime .* does not support WebAssembly relaxed SIMD/);
    if (nodeMajor <= 20) {
      // the experimental flag makes relaxed modules validate, but Node 20 keeps the plain build
      assert.deepEqual(childVariant("", ["--experimental-wasm-relaxed-simd"]), { variant: "plain" });
    }
  });
});

// ---- relaxed against plain, bit for bit ---------------------------------------------------------------------

/**
 * Weight formats with relaxed dots, the byte offsets of their blocks' fp16 fields (d, then dmin / m if any; none for
 * the e8 codebook formats, whose one-byte scale codes are all valid).
 */
const RELAXED_WEIGHTS = {
  q8_0: [0],
  q2_K: [80, 82],
  q3_K: [108],
  q4_K: [0, 2],
  q5_K: [0, 2],
  q6_K: [208],
  q4_0: [0],
  q4_1: [0, 2],
  q5_0: [0],
  q5_1: [0, 2],
  iq4_nl: [0],
  iq3_nl: [0],
  iq2_nl: [0],
  iq3_e8: [],
  iq2_e8: [],
} as const;
/**
 * Formats whose relaxed dots give the plain build's integers for partner values within ±127: those that move w's sign
 * onto x (rowdot.ts signedRelaxedBlockSums) and q8_0, whose matvec and matmul split x into max(x, 0) and max(−x, 0)
 * (splitSignBlockSums); quantizeRow_q8_0 writes −128 only where the block's scale is 0 (tested below), so their
 * crafted activations stop at −127.
 */
const PARTNER_WITHIN_127 = new Set<string>(["q8_0", "iq4_nl", "iq3_nl", "iq2_nl", "iq3_e8", "iq2_e8"]);
type RelaxedWeight = keyof typeof RELAXED_WEIGHTS;
const isKQuant = (name: string) => name.endsWith("_K");
/** Formats with a q8_0 partner, whose matmulWide_<fmt> (matmul-wide.ts) moves w's sign onto x in the relaxed build. */
const hasWideQ8 = (format: BlockFormat) => format.dotPartner === "q8_0" && `matmulWide_${format.name}` in defaultRuntime().k;

const N_ROWS = 8;
const MAX_TOKENS = 9;
const SENTINEL = -3131.5;
const ROW_RANGES = [[0, N_ROWS], [1, 6], [3, 4], [7, 8], [5, 5]] as const;
const OUT_STRIDE = N_ROWS * 4 + 8; // bytes: wider than a row, so strides are exercised
const WIDE_K_BLOCK_BYTES = 560; // matmul-wide-k.ts WIDE_K_BLOCK_BYTES (src/model/linear.ts wideRowBytesK)

/** Gaussian values with a power-of-two scale that changes every 32 values: (n). */
function gaussian(n: number, rand: () => number): Float32Array {
  const out = new Float32Array(n); // (n)
  let scale = 1;
  for (let i = 0; i < n; i++) {
    if (i % 32 === 0) scale = 2 ** Math.floor(rand() * 12 - 6);
    out[i] = scale * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  }
  return out;
}

/**
 * N_ROWS weight rows of `cols` values: (N_ROWS, rowBytes). Rows 0-1 from the reference quantizer; the rest are raw
 * bytes (random ×2, all 0xff, all 0x00, all 0x80, all 0x7f: levels, scales and mins at the ends of their ranges) with
 * finite fp16 scales written in (random: d in [2^-8, 2^-3), dmin / m negative; extremes: 1 and 0.5).
 */
function weightRows(format: BlockFormat, cols: number, rand: () => number): Uint8Array {
  const bytes = rowBytes(format, cols);
  const out = new Uint8Array(N_ROWS * bytes); // (N_ROWS, bytes)
  const [dAt, mAt] = RELAXED_WEIGHTS[format.name as RelaxedWeight] as readonly number[];
  for (let r = 0; r < N_ROWS; r++) {
    const row = out.subarray(r * bytes, (r + 1) * bytes);
    if (r < 2) {
      row.set(referenceQuantize(format, gaussian(cols, rand)));
      continue;
    }
    const fill = [-1, -1, 0xff, 0x00, 0x80, 0x7f][r - 2];
    for (let i = 0; i < bytes; i++) row[i] = fill < 0 ? Math.floor(rand() * 256) : fill;
    for (let b = 0; b < bytes && dAt !== undefined; b += format.bytesPerBlock) {
      writeF16(row, b + dAt, fill < 0 ? 2 ** (rand() * 5 - 8) : 1);
      if (mAt !== undefined) writeF16(row, b + mAt, fill < 0 ? -(2 ** (rand() * 5 - 8)) : 0.5);
    }
  }
  return out;
}

/** Where a partner block keeps its int8 values, and whether its scale is an f32 (q8_K) or fp16 (q8_0, q8_1). */
const PARTNERS = { q8_K: { qs: 4, f32Scale: true }, q8_0: { qs: 2, f32Scale: false }, q8_1: { qs: 4, f32Scale: false } } as const;

/**
 * MAX_TOKENS activation rows in the weight format's partner: (MAX_TOKENS, rowBytes(partner)). Tokens 0-2: all 127,
 * all `lowest` (−128 unless given), alternating `lowest` / 127; 3-4: random int8 in lowest..127; the rest from the
 * reference quantizer. The
 * crafted blocks' other fields are what the kernels expect: q8_K's bsums (16-value sums), q8_1's s = fp16(d × Σ q).
 */
function activationRows(partner: BlockFormat, cols: number, rand: () => number, lowest = -128): Uint8Array {
  const { qs, f32Scale } = PARTNERS[partner.name as keyof typeof PARTNERS];
  const bytes = rowBytes(partner, cols);
  const out = new Uint8Array(MAX_TOKENS * bytes); // (MAX_TOKENS, bytes)
  for (let t = 0; t < MAX_TOKENS; t++) {
    const row = out.subarray(t * bytes, (t + 1) * bytes);
    if (t >= 5) {
      row.set(referenceQuantize(partner, gaussian(cols, rand).map((v) => v * 30)));
      continue;
    }
    const view = new DataView(row.buffer, row.byteOffset, row.byteLength);
    for (let b = 0; b < bytes; b += partner.bytesPerBlock) {
      let sum = 0;
      for (let j = 0; j < partner.blockSize; j++) {
        const q = t === 0 ? 127 : t === 1 ? lowest : t === 2 ? (j % 2 === 0 ? lowest : 127) : lowest + Math.floor(rand() * (128 - lowest));
        view.setInt8(b + qs + j, q);
        sum += q;
        if (partner.name === "q8_K" && j % 16 === 15) {
          view.setInt16(b + 260 + 2 * ((j - 15) / 16), sum, true);
          sum = 0;
        }
      }
      const d = t < 3 ? 1 : 0.25 + rand();
      if (f32Scale) view.setFloat32(b, d, true);
      else writeF16(row, b, d);
      if (partner.name === "q8_1") writeF16(row, b + 2, f16BitsToF32(f32ToF16Bits(d)) * sum);
    }
  }
  return out;
}

/** One kernel call's output: tokens firstToken .. firstToken + nTokens − 1 in output rows 0.., rows [rowStart, rowEnd). */
interface KernelRun {
  what: string;
  firstToken: number;
  nTokens: number;
  rowStart: number;
  rowEnd: number;
  out: Float32Array; // (MAX_TOKENS, OUT_STRIDE / 4)
}

/**
 * What one build computes for one format and size: matvec of every row for each token (rows: (N_ROWS, MAX_TOKENS)),
 * dot_<fmt> of every (row, token) for the K-quants (whose dot is their matvec's row dot; (N_ROWS, MAX_TOKENS)), and
 * runs of matvec, matmul and matmulWide over row ranges and token counts (matmulWide: K-quants, and q8_0 partners
 * when `lowest`, the activations' least value, is −127).
 */
function runKernels(rt: WasmRuntime, format: BlockFormat, cols: number, w: Uint8Array, x: Uint8Array, lowest: number): { rows: Float32Array; dots: Float32Array; runs: KernelRun[] } {
  const name = format.name;
  const wide = isKQuant(name) || (hasWideQ8(format) && lowest === -127);
  const wBytes = rowBytes(format, cols);
  const xBytes = x.length / MAX_TOKENS;
  const wPtr = rt.alloc(w.length);
  const xPtr = rt.alloc(x.length);
  // matmulWide's input: K-quants' x with each super-block in quad order ((MAX_TOKENS, xBytes)); q8_0 partners' x in the
  // build's wide layout ((MAX_TOKENS, wideRowBytes), widenRows_q8_0), for activations within ±127 only (`wide`)
  const wideXPtr = rt.alloc(isKQuant(name) ? x.length : MAX_TOKENS * wideRowBytes(cols));
  const outPtr = rt.alloc(MAX_TOKENS * OUT_STRIDE);
  const scratch = rt.alloc(2 * Math.max(Math.ceil(cols / 256) * WIDE_K_BLOCK_BYTES, wideRowBytes(cols)));
  const rows = new Float32Array(N_ROWS * MAX_TOKENS); // (N_ROWS, MAX_TOKENS)
  const dots = new Float32Array(isKQuant(name) ? N_ROWS * MAX_TOKENS : 0); // (N_ROWS, MAX_TOKENS)
  const runs: KernelRun[] = [];
  const run = (what: string, firstToken: number, nTokens: number, rowStart: number, rowEnd: number, call: () => void) => {
    rt.f32(outPtr, (MAX_TOKENS * OUT_STRIDE) / 4).fill(SENTINEL);
    call();
    runs.push({ what: `${what} rows [${rowStart},${rowEnd})`, firstToken, nTokens, rowStart, rowEnd, out: rt.f32(outPtr, (MAX_TOKENS * OUT_STRIDE) / 4).slice() });
  };
  try {
    rt.u8(wPtr, w.length).set(w);
    rt.u8(xPtr, x.length).set(x);
    if (isKQuant(name)) rt.u8(wideXPtr, x.length).set(q8KInQuadOrder(x, cols));
    else if (wide) rt.k.widenRows_q8_0(xPtr, wideXPtr, MAX_TOKENS, cols);
    for (let t = 0; t < MAX_TOKENS; t++) {
      rt.k[`matvec_${name}`](wPtr, xPtr + t * xBytes, outPtr, 0, N_ROWS, cols);
      rt.f32(outPtr, N_ROWS).forEach((v, r) => (rows[r * MAX_TOKENS + t] = v));
      if (!isKQuant(name)) continue;
      for (let r = 0; r < N_ROWS; r++) dots[r * MAX_TOKENS + t] = rt.k[`dot_${name}`](wPtr + r * wBytes, xPtr + t * xBytes, cols) as number;
    }
    for (const [rowStart, rowEnd] of ROW_RANGES) {
      for (let t = 0; t < MAX_TOKENS; t++) {
        run(`matvec token ${t}`, t, 1, rowStart, rowEnd, () => rt.k[`matvec_${name}`](wPtr, xPtr + t * xBytes, outPtr, rowStart, rowEnd, cols));
      }
      for (let n = 1; n <= MAX_TOKENS; n++) {
        run(`matmul ${n} tokens`, 0, n, rowStart, rowEnd, () => rt.k[`matmul_${name}`](wPtr, xPtr, outPtr, rowStart, rowEnd, cols, n, xBytes, OUT_STRIDE));
        if (!wide) continue;
        run(`matmulWide ${n} tokens`, 0, n, rowStart, rowEnd, () => rt.k[`matmulWide_${name}`](wPtr, wideXPtr, outPtr, rowStart, rowEnd, cols, n, OUT_STRIDE, scratch));
      }
    }
  } finally {
    for (const p of [wPtr, xPtr, wideXPtr, outPtr, scratch]) rt.free(p);
  }
  return { rows, dots, runs };
}

/** Index of the first element where a and b differ (Object.is), or −1. */
function firstDifference(a: Float32Array, b: Float32Array): number {
  return a.findIndex((v, i) => !Object.is(v, b[i]));
}

describe("relaxed-SIMD weight kernels equal the plain ones bit for bit", () => {
  if (!supported) {
    it(`this runtime (Node ${process.versions.node}) has no relaxed SIMD: the relaxed build does not compile and the plain build is in use`, () => {
      assert.throws(() => new WebAssembly.Module(readFileSync(buildFile("kernels-relaxed.wasm"))), WebAssembly.CompileError);
      if (process.env[RELAXED_ENV] !== "1") assert.equal(kernelVariant(), "plain");
      assert.equal(defaultRuntime().module, loadKernelModule("plain"));
    });
    return;
  }

  const plain = new WasmRuntime(undefined, { module: loadKernelModule("plain") });
  const relaxed = new WasmRuntime(undefined, { module: loadKernelModule("relaxed") });

  for (const name of Object.keys(RELAXED_WEIGHTS) as RelaxedWeight[]) {
    const format = getFormat(name);
    const partner = getFormat(format.dotPartner);
    const kernels = isKQuant(name) ? "dot, matvec, matmul and matmulWide over 1, 2, 9 super-blocks"
      : `matvec${hasWideQ8(format) ? ", matmul and matmulWide (activations ≥ −127)" : " and matmul"} over 1, 3, 4, 9 blocks`;
    // activations down to −128, and for the q8_0 partners' matmulWide (which moves w's sign onto x) down to −127
    const lowests = PARTNER_WITHIN_127.has(name) ? [-127] : hasWideQ8(format) ? [-128, -127] : [-128];
    it(`${name}: ${kernels}, 1..9 tokens, odd row ranges, extreme bytes`, () => {
      for (const [blocks, lowest] of (isKQuant(name) ? [1, 2, 9] : [1, 3, 4, 9]).flatMap((b) => lowests.map((l) => [b, l]))) {
        const cols = blocks * format.blockSize;
        const rand = seededRandom(1000 * blocks + format.ggmlType);
        const w = weightRows(format, cols, rand);
        const x = activationRows(partner, cols, rand, lowest);
        const fromPlain = runKernels(plain, format, cols, w, x, lowest);
        const fromRelaxed = runKernels(relaxed, format, cols, w, x, lowest);
        for (const what of ["rows", "dots"] as const) {
          const at = firstDifference(fromRelaxed[what], fromPlain[what]);
          assert.equal(at, -1, `${name} cols=${cols} ${what} (row, token) ${at}: relaxed ${fromRelaxed[what][at]}, plain ${fromPlain[what][at]}`);
        }
        fromPlain.runs.forEach((want, i) => {
          const got = fromRelaxed.runs[i];
          const at = firstDifference(got.out, want.out);
          assert.equal(at, -1, `${name} cols=${cols} ${want.what}: relaxed ${got.out[at]} at ${at}, plain ${want.out[at]}`);
        });

        // the scalar reference, within the bound of the other kernel tests
        const wBytes = rowBytes(format, cols);
        const xBytes = rowBytes(partner, cols);
        const rows = fromRelaxed.rows; // (N_ROWS, MAX_TOKENS)
        for (let r = 0; r < N_ROWS; r++) {
          const rowQ = w.subarray(r * wBytes, (r + 1) * wBytes);
          const rowValues = referenceDequantize(format, rowQ, cols);
          for (let t = 0; t < MAX_TOKENS; t++) {
            const xRow = x.subarray(t * xBytes, (t + 1) * xBytes);
            const ref = format.reference.dot(rowQ, xRow, cols);
            const tol = dotTolerance(format, cols, rowValues, referenceDequantize(partner, xRow, cols));
            const got = rows[r * MAX_TOKENS + t];
            assert.ok(Math.abs(got - ref) <= tol, `${name} cols=${cols} row ${r} token ${t}: ${got}, reference ${ref} (tol ${tol})`);
          }
        }
        // a K-quant's dot is its matvec's row dot; every batched output is the matvec's value where written, and
        // nothing else is written
        if (isKQuant(name)) assert.equal(firstDifference(fromRelaxed.dots, rows), -1, `${name} cols=${cols}: dot differs from matvec`);
        for (const run of fromRelaxed.runs) {
          for (let t = 0; t < MAX_TOKENS; t++) {
            for (let r = 0; r < OUT_STRIDE / 4; r++) {
              const written = t < run.nTokens && r >= run.rowStart && r < run.rowEnd;
              const want = written ? rows[r * MAX_TOKENS + run.firstToken + t] : SENTINEL;
              const v = run.out[(t * OUT_STRIDE) / 4 + r];
              assert.ok(Object.is(v, want), `${name} cols=${cols} ${run.what}: out[${t}][${r}] = ${v}, want ${want}`);
            }
          }
        }
      }
    });
  }
});

/**
 * Every packed K/V format through the grouped attention kernel and the per-channel key path of both builds: the
 * decoders' table lookups (iq4_nl and the codebook levels, the q5 fifth bits) are relaxed swizzles in the relaxed
 * build (common.ts lookup16), so stored bytes and outputs must be equal bit for bit.
 */
describe("relaxed-SIMD attention equals the plain one bit for bit", () => {
  if (!supported) return; // the weight kernels' describe above says why, and checks the plain build is in use
  const PACKED: KvFormatName[] = ["q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl", "iq3_nl", "iq2_nl", "iq3_e8", "iq2_e8"];
  const shape = { nHeads: 8, nKvHeads: 2, headDim: 64 }; // a group of 4 heads: the grouped kernel
  const nPos = 70; // two complete key groups and a partial one
  const kvDim = shape.nKvHeads * shape.headDim;
  const qDim = shape.nHeads * shape.headDim;

  /** (out (nPos, qDim) f32, stored K and V rows) of one build with K of `kName` (per channel when `channel`), V of `vName`. */
  function run(variant: "plain" | "relaxed", kName: KvFormatName, vName: KvFormatName, channel: boolean) {
    const build = new WasmRuntime(undefined, { module: loadKernelModule(variant) });
    const rand = seededRandom(90);
    const cache = new KvCache(build, {
      nLayers: 1, ...shape, contextSize: nPos, maxTokens: nPos, rotation: true, ...(channel ? { window: 32 } : {}),
      layers: [{ k: getKvFormat(kName), v: getKvFormat(vName), ...(channel ? { kLayout: "channel" as const } : {}) }],
    });
    const k = build.alloc(nPos * kvDim * 4); // (nPos, kvDim) f32
    const v = build.alloc(nPos * kvDim * 4); // (nPos, kvDim) f32
    const q = build.alloc(nPos * qDim * 4); // (nPos, qDim) f32
    const out = build.alloc(nPos * qDim * 4); // (nPos, qDim) f32
    try {
      build.f32(k, nPos * kvDim).set(gaussian(nPos * kvDim, rand));
      build.f32(v, nPos * kvDim).set(gaussian(nPos * kvDim, rand));
      build.f32(q, nPos * qDim).set(gaussian(nPos * qDim, rand));
      cache.appendBatch(0, 0, nPos, k, v);
      cache.setLength(nPos);
      cache.attendBatch(0, 0, nPos, q, out);
      const rows = channel ? [] : Array.from({ length: nPos }, (_, p) => [...cache.packedRow(0, "k", p), ...cache.packedRow(0, "v", p)]);
      return { out: Float32Array.from(build.f32(out, nPos * qDim)), rows: Uint8Array.from(rows.flat()) };
    } finally {
      cache.dispose();
      for (const p of [k, v, q, out]) build.free(p);
    }
  }

  for (const name of PACKED) {
    it(`K and V ${name}, and keys per channel in ${name}: 70 positions, rotation on`, () => {
      for (const channel of [false, true]) {
        const plain = run("plain", name, name, channel);
        const relaxed = run("relaxed", name, name, channel);
        const label = `${name}${channel ? " per channel" : ""}`;
        assert.ok(plain.out.every(Number.isFinite), `${label}: finite outputs`);
        assert.ok(Buffer.from(relaxed.rows).equals(Buffer.from(plain.rows)), `${label}: stored rows differ`);
        // bit patterns, first difference named (a deepEqual of 35,840 floats would print them all)
        const [a, b] = [new Uint32Array(relaxed.out.buffer), new Uint32Array(plain.out.buffer)];
        const at = a.findIndex((bits, i) => bits !== b[i]);
        assert.equal(at, -1, `${label}: output ${at} is ${relaxed.out[at]} (relaxed), ${plain.out[at]} (plain)`);
      }
    });
  }
});

describe("the q8_0 activations the table formats' relaxed dots take", () => {
  it("quantizeRow_q8_0 writes −128 only in blocks whose fp16 scale is 0 (every term of such a block is ±0)", () => {
    const rt = defaultRuntime();
    const cols = 256;
    const rand = seededRandom(128);
    const rows: Float32Array[] = [
      new Float32Array(cols).fill(-1), new Float32Array(cols).map((_, i) => (i % 2 ? -3.4e38 : 3.4e38)),
      new Float32Array(cols).map((_, i) => (i % 3 ? -1e-40 : 1e-40)), new Float32Array(cols).map((_, i) => (i === 7 ? -1e6 : rand() - 0.5)),
      new Float32Array(cols).map((_, i) => (i % 5 ? -1e-30 : 2e-37)),
      ...Array.from({ length: 8 }, () => gaussian(cols, rand).map((v) => -Math.abs(v))),
    ];
    const q8 = getFormat("q8_0");
    const src = rt.alloc(cols * 4);
    const dst = rt.alloc(rowBytes(q8, cols));
    let seen = 0;
    try {
      for (const [i, row] of rows.entries()) {
        rt.f32(src, cols).set(row);
        rt.k.quantizeRow_q8_0(src, dst, cols);
        const bytes = rt.u8(dst, rowBytes(q8, cols)).slice();
        for (let b = 0; b < bytes.length; b += q8.bytesPerBlock) {
          const dBits = (bytes[b]! | (bytes[b + 1]! << 8)) & 0x7fff;
          const values = new Int8Array(bytes.buffer, b + 2, 32);
          if (values.includes(-128)) {
            seen++;
            assert.equal(dBits, 0, `row ${i}, block ${b / q8.bytesPerBlock}: −128 with a nonzero scale`);
          }
        }
      }
    } finally {
      rt.free(src);
      rt.free(dst);
    }
    assert.ok(seen > 0, "the subnormal row gives −128 (1/d overflows), so this test can fail");
  });
});

if (process.env[TIER_CHILD_ENV] === undefined) {
  describe("relaxed and plain builds agree under each WebAssembly compiler of V8", () => {
    const flagSets = [["--liftoff", "--no-wasm-tier-up"], ["--no-liftoff"]];
    for (const flags of flagSets) {
      it(`this file's tests pass in a child process with ${flags.join(" ")}`, () => {
        const file = fileURLToPath(import.meta.url);
        // a failing test makes the child exit non-zero: execFileSync throws with its report
        try {
          execFileSync(process.execPath, [...flags, "--test-reporter=dot", file], {
            env: { ...process.env, [TIER_CHILD_ENV]: "1" }, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"],
          });
        } catch (e) {
          const { stdout, stderr } = e as { stdout?: string; stderr?: string };
          assert.fail(`with ${flags.join(" ")}:\n${stdout ?? ""}${stderr ?? ""}`);
        }
      });
    }
  });
}
