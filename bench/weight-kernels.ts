/**
 * Single-thread speed of the weight kernels, one build against another: matvec_<fmt> (one token: generation) and
 * matmulWide_<fmt> (64 tokens: prompts; --wide-tokens sets other batch sizes, such as a server's few streams) of a
 * 2048 × 2048 (--cols: 2048 × COLS) q4_K / q5_K / q6_K matrix with q8_K activations; for the 32-value block formats (--formats
 * q8_0,q4_0,...) matvec, matmul_<fmt> of 2 tokens and, for those with one, matmulWide_<fmt> (each build's
 * own wide layout, from widenRows_q8_0). Prints the median of a few timed repetitions per kernel (CPU time of the
 * process: the machine may be shared), in ms and in GMAC/s (rows × cols × tokens / time).
 *
 *   node dist/bench/weight-kernels.js [--wasm FILE]... [--reps N] [--formats q4_K,q5_K,q6_K] [--wide-tokens 2,4,64] [--cols 2048]
 *
 * Formats with a four-row layout (q4_K, q8_0) also run its kernels on the same matrix repacked (matvec_<fmt>_x4 on one
 * token, matmul_<fmt>_x4 on the --wide-tokens batches; q8_0's against its own split input), each checked to give the
 * row layout's bits. --quantize adds quantizeRow_<fmt> of
 * QUANT_ROWS rows of Gaussian floats (what a K/V cache does to every new position's rows), in millions of values a
 * second, its bytes checked like the products' outputs:
 *
 *   node dist/bench/weight-kernels.js --formats iq3_nl,iq2_nl,iq3_e8,q4_0 --quantize --wasm OLD.wasm --wasm NEW.wasm
 *
 * Without --wasm it compares build/kernels.wasm with build/kernels-relaxed.wasm (the latter only where the runtime
 * has relaxed SIMD). Each build runs on its own memory with the same inputs; the script also checks that every build
 * gives the same output bits as the first, so a faster build is never a wrong one.
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { WasmRuntime, relaxedSimdSupported } from "../src/runtime/wasm.js";
import { getFormat, rowBytes } from "../src/formats/table.js";
import { TILE_GROUP_ROWS, type TiledKernels } from "../src/formats/types.js";
import { wideRowBytes, wideScratchBytes } from "../src/model/linear.js";
import { seededRandom } from "../test/helpers/random.js";

const ROWS = 2048;
/** Columns of the matrices (--cols; 5632: TinyLlama's ffn_down, whose q8_0 tiles are stored in column segments). */
const COLS = Number(parseArgs({ options: { cols: { type: "string", default: "2048" } }, strict: false }).values.cols);
const WIDE_TOKENS = 64;
/** Bytes of one row of COLS values in the wide layout of q8_0-partner products (assembly/formats/matmul-wide.ts). */
const WIDE_ROW_BYTES = wideRowBytes(COLS);
/** Distinct quantized rows, repeated to fill the matrix (the quantizers are slow; the kernels do not care). */
const DISTINCT_ROWS = 32;
/** Rows of COLS floats a quantizeRow case quantizes per call. */
const QUANT_ROWS = 16;

interface Case {
  format: string;
  kernel: "matvec" | "matmul" | "matmulWide" | "matvec_x4" | "matmul_x4" | "matmulWide_x4" | "quantizeRow";
  tokens: number;
}
const isKQuant = (format: string) => format.endsWith("_K");

/** Gaussian-ish floats with a per-row scale: (n) values. */
function values(n: number, rand: () => number, scale: number): Float32Array {
  const out = new Float32Array(n); // (n)
  for (let i = 0; i < n; i++) out[i] = scale * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return out;
}

/** Bytes of one row of COLS values in a tiled kernel's own input layout (blocks of the q8_0 partner's 32 values). */
function tiledInputBytes(input: NonNullable<TiledKernels["input"]>): number {
  return (COLS / getFormat("q8_0").blockSize) * input.bytesPerBlock;
}

/** One build's runtime with the matrix of each format and the activations in each partner format in its memory. */
class Setup {
  readonly rt: WasmRuntime;
  readonly w = new Map<string, number>(); // format -> (ROWS, rowBytes) weights
  readonly tiles = new Map<string, number>(); // format -> the same weights in its four-row layout (formats with one)
  readonly x = new Map<string, number>(); // partner format -> (WIDE_TOKENS, rowBytes) activations
  readonly xTiled = new Map<string, number>(); // tiled input's quantizeRows -> (WIDE_TOKENS, its row bytes): the same activations in a tiled kernel's own layout
  xWideK = 0; // (WIDE_TOKENS, q8_K rowBytes): the same activations as wide q8_K (quantizeRowsWide_q8_K), for matmulWide_<K-quant>
  xWide = 0; // (WIDE_TOKENS, WIDE_ROW_BYTES): the q8_0 activations widened (widenRows_q8_0), for matmulWide_<fmt> of q8_0 partners
  readonly out: number; // (WIDE_TOKENS, ROWS) f32
  readonly scratch: number; // matmulWide_<fmt>[_x4] scratch (src/model/linear.ts wideScratchBytes)
  readonly tiledScratch: number; // matvec_<fmt>_x4 / matmul_<fmt>_x4 scratch (tiledScratchBytes())
  readonly quantIn: number; // (QUANT_ROWS, COLS) f32: quantizeRow cases' input
  readonly quantOut: number; // (QUANT_ROWS, the largest of the formats' row bytes) bytes: their output

  constructor(readonly name: string, module: WebAssembly.Module, formats: readonly string[]) {
    this.rt = new WasmRuntime(undefined, { module });
    const k = this.rt.k;
    const rand = seededRandom(12345);
    const floats = this.rt.alloc(COLS * 4);
    for (const format of formats) {
      const bytes = rowBytes(getFormat(format), COLS);
      const w = this.rt.alloc(ROWS * bytes);
      for (let r = 0; r < DISTINCT_ROWS; r++) {
        this.rt.f32(floats, COLS).set(values(COLS, rand, 0.02 * 2 ** (rand() * 4 - 2)));
        k[`quantizeRow_${format}`](floats, w + r * bytes, COLS);
      }
      const u8 = this.rt.u8(w, ROWS * bytes);
      for (let r = DISTINCT_ROWS; r < ROWS; r++) u8.copyWithin(r * bytes, (r % DISTINCT_ROWS) * bytes, (r % DISTINCT_ROWS + 1) * bytes);
      this.w.set(format, w);
      const tiled = getFormat(format).tiled;
      if (tiled) {
        const t = this.rt.alloc(ROWS * bytes);
        this.rt.u8(t, ROWS * bytes).set(u8);
        const scratch = this.rt.alloc(TILE_GROUP_ROWS * bytes); // (TILE_GROUP_ROWS, bytes)
        k[tiled.repack](t, ROWS, COLS, scratch);
        this.rt.free(scratch);
        this.tiles.set(format, t);
      }
      const partner = getFormat(format).dotPartner;
      if (this.x.has(partner)) continue;
      const xBytes = rowBytes(getFormat(partner), COLS);
      const x = this.rt.alloc(WIDE_TOKENS * xBytes);
      const ownInputs = formats.flatMap((f) => (getFormat(f).dotPartner === partner && getFormat(f).tiled?.input) || []);
      for (const input of ownInputs) this.xTiled.set(input.quantizeRows, this.rt.alloc(WIDE_TOKENS * tiledInputBytes(input)));
      for (let t = 0; t < WIDE_TOKENS; t++) {
        this.rt.f32(floats, COLS).set(values(COLS, rand, 3));
        k[`quantizeRow_${partner}`](floats, x + t * xBytes, COLS);
        for (const input of ownInputs) k[input.quantizeRows](floats, x + t * xBytes, this.xTiled.get(input.quantizeRows)! + t * tiledInputBytes(input), 0, 1, COLS);
        if (partner === "q8_K") {
          this.xWideK ||= this.rt.alloc(WIDE_TOKENS * xBytes);
          k.quantizeRowsWide_q8_K(floats, this.xWideK + t * xBytes, 0, 1, COLS);
        }
      }
      if (partner === "q8_0") {
        this.xWide = this.rt.alloc(WIDE_TOKENS * WIDE_ROW_BYTES);
        k.widenRows_q8_0(x, this.xWide, WIDE_TOKENS, COLS);
      }
      this.x.set(partner, x);
    }
    this.out = this.rt.alloc(WIDE_TOKENS * ROWS * 4);
    this.scratch = this.rt.alloc(wideScratchBytes(COLS));
    this.tiledScratch = this.rt.alloc(typeof k.tiledScratchBytes === "function" ? k.tiledScratchBytes() : 64); // builds before it took none
    this.quantIn = this.rt.alloc(QUANT_ROWS * COLS * 4);
    for (let r = 0; r < QUANT_ROWS; r++) this.rt.f32(this.quantIn + r * COLS * 4, COLS).set(values(COLS, rand, 2 ** (rand() * 4 - 2)));
    this.quantOut = this.rt.alloc(QUANT_ROWS * Math.max(...formats.map((f) => rowBytes(getFormat(f), COLS))));
  }

  run(c: Case): void {
    const w = this.w.get(c.format)!;
    const partner = getFormat(c.format).dotPartner;
    const x = this.x.get(partner)!;
    const input = getFormat(c.format).tiled?.input;
    const xt = input ? this.xTiled.get(input.quantizeRows)! : x; // the tiled kernels' input
    const xtBytes = input ? tiledInputBytes(input) : rowBytes(getFormat(partner), COLS);
    const k = this.rt.k;
    if (c.kernel === "quantizeRow") k[`quantizeRow_${c.format}`](this.quantIn, this.quantOut, QUANT_ROWS * COLS);
    else if (c.kernel === "matvec_x4") k[`matvec_${c.format}_x4`](this.tiles.get(c.format)!, xt, this.out, 0, ROWS, COLS, this.tiledScratch);
    else if (c.kernel === "matmul_x4") k[`matmul_${c.format}_x4`](this.tiles.get(c.format)!, xt, this.out, 0, ROWS, COLS, c.tokens, xtBytes, ROWS * 4, this.tiledScratch);
    else if (c.kernel === "matvec") k[`matvec_${c.format}`](w, x, this.out, 0, ROWS, COLS);
    else if (c.kernel === "matmul") k[`matmul_${c.format}`](w, x, this.out, 0, ROWS, COLS, c.tokens, rowBytes(getFormat(partner), COLS), ROWS * 4);
    else if (c.kernel === "matmulWide_x4") k[`matmulWide_${c.format}_x4`](this.tiles.get(c.format)!, this.xWide, this.out, 0, ROWS, COLS, c.tokens, ROWS * 4, this.scratch);
    else k[`matmulWide_${c.format}`](w, partner === "q8_K" ? this.xWideK : this.xWide, this.out, 0, ROWS, COLS, c.tokens, ROWS * 4, this.scratch);
  }

  output(c: Case): Float32Array {
    if (c.kernel === "quantizeRow") return Float32Array.from(this.rt.u8(this.quantOut, QUANT_ROWS * rowBytes(getFormat(c.format), COLS)));
    return this.rt.f32(this.out, c.tokens * ROWS).slice();
  }
}

/** CPU time of this process so far, in ms: unlike wall time, it does not count spells when other work holds the cores. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * Median CPU ms per call of each setup over `reps` repetitions, each of enough calls to take about 20 ms; the setups
 * take turns within a repetition, so a slow spell of a shared machine hits them alike.
 */
function time(setups: readonly Setup[], c: Case, reps: number): number[] {
  const calls = setups.map((s) => {
    s.run(c);
    const t0 = performance.now();
    s.run(c);
    return Math.max(1, Math.round(20 / Math.max(performance.now() - t0, 0.01)));
  });
  const perCall = setups.map(() => [] as number[]);
  for (let r = 0; r < reps; r++) {
    setups.forEach((s, i) => {
      const t0 = cpuMs();
      for (let j = 0; j < calls[i]; j++) s.run(c);
      perCall[i].push((cpuMs() - t0) / calls[i]);
    });
  }
  return perCall.map((ms) => ms.sort((a, b) => a - b)[Math.floor(reps / 2)]);
}

function main(): void {
  const { values: opts } = parseArgs({ options: {
    wasm: { type: "string", multiple: true },
    reps: { type: "string", default: "9" },
    formats: { type: "string", default: "q4_K,q5_K,q6_K" },
    "wide-tokens": { type: "string", default: String(WIDE_TOKENS) },
    quantize: { type: "boolean", default: false },
    cols: { type: "string", default: "2048" },
  } });
  if (!Number.isInteger(COLS) || COLS < 256 || COLS % 256 !== 0) throw new RangeError(`--cols: a multiple of 256, got ${opts.cols}`);
  const wideTokens = opts["wide-tokens"].split(",").map(Number);
  if (wideTokens.some((t) => !Number.isInteger(t) || t < 1 || t > WIDE_TOKENS)) throw new RangeError(`--wide-tokens: integers 1..${WIDE_TOKENS}, got ${opts["wide-tokens"]}`);
  const reps = Number(opts.reps);
  const build = (file: string) => fileURLToPath(new URL(`../../build/${file}`, import.meta.url));
  const files = opts.wasm ?? [build("kernels.wasm"), ...(relaxedSimdSupported() ? [build("kernels-relaxed.wasm")] : [])];
  const formats = opts.formats.split(",");
  const setups = files.map((f) => new Setup(f.replace(/^.*\//, ""), new WebAssembly.Module(readFileSync(f)), formats));
  const cases: Case[] = formats.flatMap((format) => [
    { format, kernel: "matvec" as const, tokens: 1 },
    ...(isKQuant(format) ? [] : [{ format, kernel: "matmul" as const, tokens: 2 }]),
    ...(typeof setups[0]!.rt.k[`matmulWide_${format}`] === "function" ? wideTokens.map((tokens) => ({ format, kernel: "matmulWide" as const, tokens })) : []),
    ...(getFormat(format).tiled ? [{ format, kernel: "matvec_x4" as const, tokens: 1 }, ...wideTokens.map((tokens) => ({ format, kernel: "matmul_x4" as const, tokens }))] : []),
    ...(typeof setups[0]!.rt.k[`matmulWide_${format}_x4`] === "function" ? wideTokens.map((tokens) => ({ format, kernel: "matmulWide_x4" as const, tokens })) : []),
    ...(opts.quantize ? [{ format, kernel: "quantizeRow" as const, tokens: 1 }] : []),
  ]);
  /** The row layout's case a tiled one must equal. */
  const rowCase = (c: Case): Case => ({ ...c, kernel: c.kernel === "matvec_x4" ? "matvec" : "matmulWide" }); // matmulWide equals matmul bit for bit
  console.log(`Node ${process.versions.node}, ${ROWS} × ${COLS}, one thread, median CPU time of ${reps} repetitions`);
  console.log(["kernel", "tokens", ...setups.map((s) => `${s.name} ms (GMAC/s; quantizeRow: M values/s)`)].join(" | "));
  for (const c of cases) {
    const ms = time(setups, c, reps);
    const outputs = setups.map((s) => s.output(c));
    const tiled = c.kernel.endsWith("_x4");
    const rows = tiled ? setups.map((s) => (s.run(rowCase(c)), s.output(c))) : [];
    const cells = setups.map((_, i) => {
      const same = outputs[i].every((v, j) => Object.is(v, outputs[0][j])) && (!tiled || outputs[i].every((v, j) => Object.is(v, rows[i][j])));
      // GMAC/s, or for a quantizer millions of values a second
      const rate = c.kernel === "quantizeRow" ? (QUANT_ROWS * COLS) / ms[i] / 1e3 : (ROWS * COLS * c.tokens) / ms[i] / 1e6;
      return `${ms[i].toFixed(3)} (${rate.toFixed(2)})${same ? "" : " DIFFERENT OUTPUT"}`;
    });
    const name = tiled ? `${c.kernel.replace("_x4", "")}_${c.format}_x4` : `${c.kernel}_${c.format}`;
    console.log([name, c.tokens, ...cells].join(" | "));
  }
}

try {
  main();
} catch (err) {
  console.error(`weight-kernels: error: ${(err as Error).message}`);
  process.exit(1);
}
