/**
 * What this machine's WebAssembly SIMD sustains at most in the instructions the q8_0 × q8_0 products spend their time
 * in, to set beside the kernels' own rates (`weight-kernels.js --formats q8_0 --wide-tokens 4,64`, GMAC/s). One
 * thread runs loops of nothing but one instruction group per accumulator chain, operands in registers, for 4 to 10
 * independent chains (one row each: an instruction waits for its chain's previous one, so few chains measure that
 * latency and more approach the throughput), and prints the multiply-accumulates per second:
 *   dot          i32x4.relaxed_dot_i8x16_i7x16_add_s alone: 16 products. The split-input kernels (matvec_q8_0_x4,
 *                matmul_q8_0_x4) spend two per 16 products of signed int8 (x = x⁺ − x⁻, both parts 0..127).
 *   select+dot   i8x16.relaxed_laneselect, then the relaxed dot: 16 products of signed int8 (|w| against x or −x by
 *                w's sign), the widened kernels' pair (matmulWide_q8_0[_x4]; their 2 × 2 tile runs four chains).
 *   i16 dot+add  i32x4.dot_i16x8_s, then i32x4.add: 8 products, the plain build's (no relaxed SIMD).
 * The kernels also load their operands and compute addresses: in V8's code for them (--print-wasm-code) 20 (the
 * widened 2 × 2 tile) to 27 (the split input's four tokens) instructions per 64 products, which this machine's core
 * ran at about four a cycle, so they are bound by their instruction count well before these ceilings. llama.cpp's
 * x86 kernels do the same products in 256- or 512-bit registers, which WebAssembly does not have. The loops are AssemblyScript, compiled here by the project's
 * own asc (a few seconds).
 *
 *   node dist/bench/simd-peak.js [--reps 5] [--steps 20000000]
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";

const REPO_ROOT = fileURLToPath(new URL("../../", import.meta.url));
/**
 * Independent accumulator chains, one row each (each instruction waits some cycles for its chain's previous one: with
 * few chains a loop measures that latency, with many the registers spill). Operand vectors the chains take turns
 * with: OPERANDS.
 */
const CHAIN_COUNTS = [4, 6, 8, 10] as const;
const OPERANDS = 2;

interface Mix {
  name: string;
  /** Products (multiply-accumulates) per instruction group. */
  macs: number;
  /** AssemblyScript of one chain's step: accumulator c{i}, operands a (changes every iteration) and x{i % OPERANDS}. */
  step: (i: number) => string;
}

const MIXES: readonly Mix[] = [
  { name: "dot", macs: 16, step: (i) => `c${i} = i32x4.relaxed_dot_i8x16_i7x16_add_s(a, x${i % OPERANDS}, c${i});` },
  { name: "select+dot", macs: 16, step: (i) => `c${i} = i32x4.relaxed_dot_i8x16_i7x16_add_s(i8x16.relaxed_laneselect(a, x${i % OPERANDS}, m), x${(i + 1) % OPERANDS}, c${i});` },
  { name: "i16 dot+add", macs: 8, step: (i) => `c${i} = i32x4.add(c${i}, i32x4.dot_i16x8_s(a, x${i % OPERANDS}));` },
];

/** One exported loop per mix and chain count: `steps` iterations of n groups, a sum returned so nothing is dead code. */
function source(): string {
  return MIXES.flatMap((mix, k) => CHAIN_COUNTS.map((n) => loop(mix, `mix${k}_${n}`, n))).join("\n");
}

function loop(mix: Mix, name: string, n: number): string {
  const chains = Array.from({ length: n }, (_, i) => i);
  return `
export function ${name}(steps: i32, seed: i32): i32 {
  let a = i8x16.splat(<i8>seed);
  const m = i8x16.splat(<i8>-(seed & 1));
  ${chains.map((i) => `let c${i} = i32x4.splat(0);`).join(" ")}
  ${Array.from({ length: OPERANDS }, (_, i) => `const x${i} = i8x16.splat(<i8>((seed + ${i}) & 63));`).join("\n  ")}
  for (let s = 0; s < steps; s++) {
    ${chains.map((i) => mix.step(i)).join("\n    ")}
    a = i8x16.add(a, m);
  }
  return i32x4.extract_lane(${chains.slice(1).reduce((sum, i) => `i32x4.add(${sum}, c${i})`, "c0")}, 0);
}`;
}

/** The loops' module bytes. */
function compile(): Buffer<ArrayBuffer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "kvsplit-simd-peak-"));
  try {
    writeFileSync(path.join(dir, "peak.ts"), source());
    const asc = path.join(REPO_ROOT, "node_modules", "assemblyscript", "bin", "asc.js");
    const out = path.join(dir, "peak.wasm");
    const run = spawnSync(process.execPath, [asc, path.join(dir, "peak.ts"), "-o", out, "--runtime", "stub", "-O3", "--noAssert", "--enable", "simd", "--enable", "relaxed-simd"], { stdio: "inherit" });
    if (run.status !== 0) throw new Error(`asc failed (exit ${run.status ?? run.signal})`);
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1]!;
}

function main(): void {
  const { values } = parseArgs({ options: { reps: { type: "string", default: "5" }, steps: { type: "string", default: "20000000" } } });
  const reps = Number(values.reps);
  const steps = Number(values.steps);
  if (!(Number.isInteger(reps) && reps > 0) || !(Number.isInteger(steps) && steps > 0)) {
    process.stderr.write(`simd-peak: --reps and --steps take positive integers (got ${values.reps}, ${values.steps})\n`);
    process.exit(2);
  }
  const bytes = compile();
  let module: WebAssembly.Module;
  try {
    module = new WebAssembly.Module(bytes);
  } catch (e) {
    process.stderr.write(`simd-peak: this runtime has no relaxed SIMD (${(e as Error).message})\n`);
    process.exit(1);
  }
  const exports = new WebAssembly.Instance(module, {}).exports as Record<string, (steps: number, seed: number) => number>;
  console.log(`| instructions | products each | chains | G groups/s | GMAC/s | runs |`);
  console.log(`|---|---|---|---|---|---|`);
  MIXES.forEach((mix, k) => {
    for (const n of CHAIN_COUNTS) {
      const fn = exports[`mix${k}_${n}`]!;
      for (let w = 0; w < 3; w++) fn(steps, 3); // untimed: V8's optimizing tier compiles in the background, then takes over
      const rates: number[] = [];
      for (let r = 0; r < reps; r++) {
        const t0 = process.hrtime.bigint();
        fn(steps, 3);
        rates.push((steps * n) / (Number(process.hrtime.bigint() - t0) / 1e9));
      }
      const groups = median(rates);
      console.log(`| ${mix.name} | ${mix.macs} | ${n} | ${(groups / 1e9).toFixed(2)} | ${((groups * mix.macs) / 1e9).toFixed(1)} | ${rates.length} |`);
    }
  });
}

main();
