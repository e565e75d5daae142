/**
 * kvsplit's own codebook KV formats iq3_nl, iq2_nl and their one-byte-scale kin iq3_e8, iq2_e8
 * (src/formats/reference/codebook.ts, e8-scale.ts), beyond the generic checks
 * of formats.test.ts (WebAssembly bytes and values equal to the reference, dot within its bound):
 *   1. the byte layout as documented: blocks packed here by hand from chosen indices decode to d × level, in the
 *      reference and in WebAssembly;
 *   2. the quantizer does what it says: its squared error is at most that of every trial scale, and within 3% of the
 *      best scale of a dense search (with nearest-level indices) on Gaussian blocks;
 *   3. edge blocks (zeros, NaN, infinities, −0, one spike, values on midpoints) quantize the same in WebAssembly as in
 *      the reference;
 *   4. bits per value are 3.5, 2.5, 3.25 and 2.25, and on Gaussian rows (what rotated K and V look like) the per-block scale does
 *      better than the best fixed-scale quantizer with the same levels;
 *   5. the e8 scale code: every code decodes to 2^((e − 160) / 8) within f32 rounding, e8Below finds the largest code at
 *      most d, and WebAssembly quantizes blocks across the whole code range as the reference does;
 *   6. they are kvsplit's own: no GGUF type id maps to them, configs holding them are kvsplit-only, and
 *      `bench --vs llama.cpp` refuses them with a clear error.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { formatByGgmlType, getFormat, getKvFormat, rowBytes } from "../../src/formats/table.js";
import { isKvsplitOnly, parseKvConfig } from "../../src/kv/shorthand.js";
import { runCli } from "../helpers/cli.js";
import { useModelDir } from "../helpers/model-dir.js";
import { IQ2_E8, IQ2_NL, IQ3_E8, IQ3_NL, nearestCodebookIndex, type Codebook } from "../../src/formats/reference/codebook.js";
import { e8Below, e8Value } from "../../src/formats/reference/e8-scale.js";
import { f16BitsToF32, f32ToF16Bits } from "../../src/formats/reference/scalar.js";
import { defaultRuntime } from "../../src/runtime/wasm.js";
import { firstMismatch, referenceDequantize, referenceQuantize } from "../helpers/format-reference.js";
import { seededRandom } from "../helpers/random.js";

const rt = defaultRuntime();
const md = useModelDir("codebook", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 96 }, 5);
const CODEBOOKS: readonly Codebook[] = [IQ3_NL, IQ2_NL, IQ3_E8, IQ2_E8];

function gaussian(n: number, seed: number): Float32Array {
  const rand = seededRandom(seed);
  const out = new Float32Array(n); // (n)
  for (let i = 0; i < n; i++) out[i] = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return out;
}

/**
 * One block packed by hand as the layout comment says: the scale (fp16 d, or the e8 code `scale` stands for), qs
 * (pairs of index bits), qh (bit 2, 3-bit formats).
 */
function packBlock(cb: Codebook, scale: { d: number; e: number }, indices: readonly number[]): Uint8Array {
  const out = new Uint8Array(cb.bytesPerBlock); // (bytesPerBlock)
  let qs = 1;
  if (cb.scale === "f16") {
    const h = f32ToF16Bits(scale.d);
    out[0] = h & 0xff;
    out[1] = h >> 8;
    qs = 2;
  } else {
    out[0] = scale.e;
  }
  for (let v = 0; v < 32; v++) {
    out[qs + (v % 8)] |= (indices[v]! & 3) << (2 * Math.floor(v / 8));
    if (cb.bits === 3) out[qs + 8 + (v % 4)] |= (indices[v]! >> 2) << Math.floor(v / 4);
  }
  return out;
}

/** WebAssembly kernel `name` of the format run on `bytes` (one block), returning its n values. */
function wasmDequantize(format: string, bytes: Uint8Array, n: number): Float32Array {
  const src = rt.alloc(bytes.length);
  const dst = rt.alloc(n * 4);
  try {
    rt.u8(src, bytes.length).set(bytes);
    rt.k[getFormat(format).kernels.dequantizeRow](src, dst, n);
    return rt.f32(dst, n).slice();
  } finally {
    rt.free(src);
    rt.free(dst);
  }
}

function wasmQuantize(format: string, x: Float32Array): Uint8Array {
  const bytes = rowBytes(getFormat(format), x.length);
  const src = rt.alloc(x.length * 4);
  const dst = rt.alloc(bytes);
  try {
    rt.f32(src, x.length).set(x);
    rt.k[getFormat(format).kernels.quantizeRow](src, dst, x.length);
    return rt.u8(dst, bytes).slice();
  } finally {
    rt.free(src);
    rt.free(dst);
  }
}

function squaredError(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

/** Least squared error of one block with nearest-level indices at scale d, refitted by least squares (float64). */
function errorAtScale(cb: Codebook, x: Float32Array, d: number): number {
  let sxl = 0;
  let sl2 = 0;
  let sx2 = 0;
  for (const v of x) {
    const l = cb.levels[nearestCodebookIndex(cb, v / d)]!;
    sxl += v * l;
    sl2 += l * l;
    sx2 += v * v;
  }
  return sx2 - (sxl * sxl) / sl2;
}

describe("codebook formats iq3_nl, iq2_nl, iq3_e8, iq2_e8", () => {
  for (const cb of CODEBOOKS) {
    it(`${cb.name}: hand-packed blocks decode to d × level (reference and WebAssembly)`, () => {
      const rand = seededRandom(7 + cb.bits);
      for (let trial = 0; trial < 20; trial++) {
        const indices = Array.from({ length: 32 }, () => Math.floor(rand() * cb.levels.length));
        const e = 1 + Math.floor(rand() * 255);
        const d = cb.scale === "f16" ? f16BitsToF32(f32ToF16Bits(0.01 + rand())) : 2 ** ((e - 160) / 8);
        const block = packBlock(cb, { d, e }, indices);
        // 2^((e − 160) / 8) in float64 rounds to the f32 the code stands for
        const want = Float32Array.from(indices, (i) => Math.fround(Math.fround(d) * cb.levels[i]!));
        const ref = referenceDequantize(getFormat(cb.name), block, 32);
        assert.equal(firstMismatch(ref, want), -1, `${cb.name} reference decode, trial ${trial}`);
        assert.equal(firstMismatch(wasmDequantize(cb.name, block, 32), want), -1, `${cb.name} WebAssembly decode, trial ${trial}`);
      }
    });

    // fp16 scales: 3%; e8 scales sit on a grid 9% apart (the better of the two codes around the search's best, the
    // levels refitted under it; measured on these blocks: worst 1.109 iq3_e8, 1.02 iq2_e8; mean 1.02, 1.005): 15%, and
    // 3% on average
    const slack = cb.scale === "f16" ? 1.03 : 1.15;
    it(`${cb.name}: the chosen scale's error is within ${Math.round((slack - 1) * 100)}% of a dense scale search on Gaussian blocks (3% on average)`, () => {
      const format = getFormat(cb.name);
      let worst = 0;
      let sum = 0;
      for (let b = 0; b < 200; b++) {
        const x = gaussian(32, 100 + b);
        const back = referenceDequantize(format, referenceQuantize(format, x), 32);
        const err = squaredError(back, x);
        const amax = Math.max(...x.map(Math.abs));
        let best = Infinity;
        for (let s = 0; s < 400; s++) best = Math.min(best, errorAtScale(cb, x, (amax / 127) * (0.5 + s / 200)));
        worst = Math.max(worst, err / best);
        sum += err / best;
      }
      // the stored scale is rounded (fp16 or e8), and the search tries 12-14 scales, not 400
      assert.ok(worst < slack, `${cb.name}: worst error ratio to the dense search ${worst.toFixed(4)}`);
      assert.ok(sum / 200 < 1.03, `${cb.name}: mean error ratio to the dense search ${(sum / 200).toFixed(4)}`);
    });
  }

  it("edge blocks quantize the same in WebAssembly as in the reference", () => {
    const block = (f: (j: number) => number) => Float32Array.from({ length: 32 }, (_, j) => f(j));
    const midpoints = IQ3_NL.levels.slice(1).map((l, i) => (l + IQ3_NL.levels[i]!) / 2);
    const edges = [
      block(() => 0),
      block((j) => (j === 5 ? Number.NaN : 1)),
      block((j) => (j === 9 ? 1000 : 0.01 * (j - 16))),
      block((j) => (j === 0 ? 127 : midpoints[j % midpoints.length]!)),
      block((j) => (j === 0 ? -127 : -midpoints[j % midpoints.length]!)),
      block((j) => (j % 2 ? 1e-16 : -3e-16)),
      block((j) => (j === 3 ? 70000 : -j)),
      // iq2_nl's midpoints ±82.5 at trial 18 (the largest |x| maps to 127 · 18/16)
      block((j) => (j === 0 ? (127 * 18) / 16 : j % 2 ? 82.5 : -82.5)),
      // infinities: the trial scales are 0, so y = 0 · ±inf is NaN, which takes the lowest level
      block((j) => (j === 2 ? Infinity : j === 7 ? -Infinity : j - 10)),
      // −0, and negative values whose y underflows to −0 (under the largest |x|, 1e30)
      block((j) => (j === 0 ? 1e30 : j % 3 === 0 ? -0 : j % 3 === 1 ? -1e-20 : 1e-20)),
    ];
    for (const cb of CODEBOOKS) {
      edges.forEach((x, i) => {
        const want = referenceQuantize(getFormat(cb.name), x);
        const got = wasmQuantize(cb.name, x);
        assert.equal(firstMismatch(got, want), -1, `${cb.name} edge block ${i}`);
      });
      // an all-zero block stores d = 0 and index 0 everywhere
      assert.ok(referenceQuantize(getFormat(cb.name), edges[0]!).every((byte) => byte === 0), `${cb.name}: zero block`);
    }
  });

  it("bits per value are 3.5, 2.5, 3.25, 2.25; on Gaussian rows the error is below the fixed-scale Lloyd-Max quantizers'", () => {
    assert.equal((getKvFormat("iq3_nl").bytesPerBlock * 8) / 32, 3.5);
    assert.equal((getKvFormat("iq2_nl").bytesPerBlock * 8) / 32, 2.5);
    assert.equal((getKvFormat("iq3_e8").bytesPerBlock * 8) / 32, 3.25);
    assert.equal((getKvFormat("iq2_e8").bytesPerBlock * 8) / 32, 2.25);
    const x = gaussian(32 * 256, 5);
    const rmse = (name: string) => {
      const f = getFormat(name);
      return Math.sqrt(squaredError(referenceDequantize(f, referenceQuantize(f, x), x.length), x) / x.length);
    };
    const q4 = rmse("q4_0");
    const iq3 = rmse("iq3_nl");
    const iq2 = rmse("iq2_nl");
    assert.ok(q4 < iq3 && iq3 < iq2, `RMSE q4_0 ${q4} < iq3_nl ${iq3} < iq2_nl ${iq2}`);
    // a unit Gaussian's best fixed-scale 8-level and 4-level quantizers (these levels): RMSE 0.186 and 0.343
    assert.ok(iq3 < 0.186, `iq3_nl RMSE ${iq3}`);
    assert.ok(iq2 < 0.343, `iq2_nl RMSE ${iq2}`);
    // the one-byte scale costs little: within 2% of the fp16 scale's RMSE, still below the fixed-scale quantizers'
    const iq3e = rmse("iq3_e8");
    const iq2e = rmse("iq2_e8");
    assert.ok(iq3e < 1.02 * iq3 && iq3e < 0.186, `iq3_e8 RMSE ${iq3e} (iq3_nl ${iq3})`);
    assert.ok(iq2e < 1.02 * iq2 && iq2e < 0.343, `iq2_e8 RMSE ${iq2e} (iq2_nl ${iq2})`);
  });

  it("e8 scale codes: each decodes to 2^((e − 160) / 8); e8Below gives the largest code at most d; WebAssembly quantizes as the reference", () => {
    assert.equal(e8Value(0), 0);
    for (let e = 1; e < 256; e++) {
      const v = e8Value(e);
      assert.equal(v, Math.fround(v), `code ${e} is an f32`);
      assert.ok(Math.abs(v / 2 ** ((e - 160) / 8) - 1) < 2 ** -23, `code ${e}: ${v}`);
      assert.equal(e8Below(v), e, `code ${e}'s own scale`);
      if (e > 1) assert.equal(e8Below(Math.fround(v * (1 - 2 ** -23))), e - 1, `just below code ${e}'s scale`);
    }
    const rand = seededRandom(11);
    for (let i = 0; i < 2000; i++) {
      const d = Math.fround(2 ** (-22 + 36 * rand()));
      const e = e8Below(d);
      assert.ok(e8Value(e) <= d && (e === 255 || d < e8Value(e + 1)), `${d}: code ${e}`);
    }
    assert.deepEqual([e8Below(0), e8Below(-1), e8Below(Number.NaN), e8Below(1e-30), e8Below(1e30), e8Below(Infinity)], [0, 0, 0, 0, 255, 255]);
    // WebAssembly's quantizer on whole blocks: scales across the whole code range and past both ends (zeros; code 255)
    for (const cb of [IQ3_E8, IQ2_E8]) {
      for (let i = 0; i < 300; i++) {
        const x = gaussian(32, 900 + i).map((v) => v * 2 ** (-18 + 38 * rand()));
        const want = referenceQuantize(getFormat(cb.name), x);
        assert.equal(firstMismatch(wasmQuantize(cb.name, x), want), -1, `${cb.name} block ${i}`);
      }
    }
  });
});

describe("kvsplit's own formats outside kvsplit", () => {
  it("no GGUF type id maps to them; configs holding them are kvsplit-only; bench --vs llama.cpp refuses them", () => {
    for (const name of ["iq3_nl", "iq2_nl", "iq3_e8", "iq2_e8"]) {
      const f = getFormat(name);
      assert.ok(f.ggmlType >= 1000, `${name} type id ${f.ggmlType}`);
      assert.equal(formatByGgmlType(f.ggmlType), undefined, `${name}: a GGUF tensor of type ${f.ggmlType} must not read as it`);
    }
    assert.equal(isKvsplitOnly(parseKvConfig("K3V3")), true);
    assert.equal(isKvsplitOnly(parseKvConfig("K8V2")), true);
    assert.equal(isKvsplitOnly(parseKvConfig("K8V4")), false);
    const bench = runCli(md.dir, ["bench", "-m", md.modelPath, "--configs", "K8V3", "--vs", "llama.cpp"]);
    assert.equal(bench.code, 2);
    assert.match(bench.stderr, /K8V3: iq3_nl is kvsplit's own format \(llama\.cpp has no V cache type like it\); bench it without --vs/);
    // kvsplit runs it: perplexity with K3V2 gives a finite value and counts 3.5 and 2.5 bits
    const ppl = runCli(md.dir, ["perplexity", "-m", md.modelPath, "-f", "text.txt", "-c", "32", "--chunks", "2", "--kv", "K3V2", "--json"]);
    assert.equal(ppl.code, 0, ppl.stderr);
    const j = JSON.parse(ppl.stdout) as { ppl: number; kv_bits_per_value: number };
    assert.ok(Number.isFinite(j.ppl) && j.ppl > 1);
    assert.equal(j.kv_bits_per_value, 3);
  });
});
