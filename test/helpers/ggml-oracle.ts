/**
 * llama.cpp's own quantizers as a test oracle: a small C bridge (ggml-oracle.c) compiled with `cc` on first use
 * (cached under os.tmpdir() by content hash) dlopen()s the libggml-base.so that node-llama-cpp ships and runs
 * ggml_quantize_chunk / quantize_row_<type>_ref / dequantize_row_<type> / the CPU backend's from_float and vec_dot
 * on rows passed through stdin and stdout. Generic over every format in src/formats/table.ts.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { getFormat, rowBytes } from "../../src/formats/table.js";
import { REPO_ROOT } from "./shared.js";

export const GGML_LIB_DIR =
  process.env.KVSPLIT_GGML_LIB_DIR ?? path.join(REPO_ROOT, "node_modules", "@node-llama-cpp", "linux-x64", "bins", "linux-x64");
const SOURCE = path.join(REPO_ROOT, "test", "helpers", "ggml-oracle.c");

/** How the bytes are produced: ggml_quantize_chunk, the type's quantize_row_*_ref, or the CPU backend's from_float. */
export type GgmlQuantizer = "chunk" | "ref" | "cpu";

/** The skip reason for node:test when the oracle cannot run here, or false. */
export function ggmlOracleSkip(): string | false {
  if (!existsSync(path.join(GGML_LIB_DIR, "libggml-base.so"))) return `llama.cpp library not found in ${GGML_LIB_DIR}`;
  if (!existsSync(SOURCE)) return `oracle source missing: ${SOURCE}`;
  if (spawnSync("cc", ["--version"]).status !== 0) return "no C compiler (cc) to build the llama.cpp oracle";
  return false;
}

let binaryPath: string | undefined;
function oracleBinary(): string {
  if (binaryPath) return binaryPath;
  const source = readFileSync(SOURCE);
  const hash = createHash("sha256").update(source).digest("hex").slice(0, 16);
  const dir = path.join(os.tmpdir(), "kvsplit-ggml-oracle", hash);
  const exe = path.join(dir, "ggml-oracle");
  if (!existsSync(exe)) {
    mkdirSync(dir, { recursive: true });
    const partial = `${exe}.${process.pid}.tmp`;
    execFileSync("cc", ["-O1", "-std=gnu11", "-Wall", "-o", partial, SOURCE, "-ldl"], { stdio: ["ignore", "ignore", "pipe"] });
    renameSync(partial, exe);
  }
  binaryPath = exe;
  return exe;
}

function run(args: string[], input: Uint8Array): Buffer {
  const result = spawnSync(oracleBinary(), [GGML_LIB_DIR, ...args], { input, maxBuffer: 1 << 30 });
  if (result.status !== 0) {
    throw new Error(`ggml-oracle ${args.join(" ")} failed (exit ${result.status}): ${result.stderr.toString().trim()}`);
  }
  return result.stdout;
}

function bytesOf(floats: Float32Array): Uint8Array {
  return new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
}

/** The CPU backend variant llama.cpp would load on this machine (the best one whose instructions the CPU has). */
export function ggmlCpuVariant(): string {
  const flags = new Set(
    (existsSync("/proc/cpuinfo") ? readFileSync("/proc/cpuinfo", "utf8") : "")
      .split("\n")
      .find((line) => line.startsWith("flags"))
      ?.split(":")[1]
      ?.trim()
      .split(/\s+/) ?? [],
  );
  const variants: Array<[string, string[]]> = [
    ["zen4", ["avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512vbmi", "avx512_vnni", "avx512_bf16"]],
    ["icelake", ["avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512vbmi", "avx512_vnni"]],
    ["skylakex", ["avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"]],
    ["haswell", ["avx2", "fma", "f16c"]],
    ["sse42", ["sse4_2"]],
  ];
  for (const [name, needs] of variants) {
    if (needs.every((f) => flags.has(f)) && existsSync(path.join(GGML_LIB_DIR, `libggml-cpu-${name}.so`))) return name;
  }
  return "x64";
}

/** Quantize rows of `nPerRow` floats (floats.length a multiple of it) with llama.cpp; returns the concatenated rows. */
export function ggmlQuantize(typeName: string, floats: Float32Array, nPerRow: number, how: GgmlQuantizer = "chunk"): Uint8Array {
  const format = getFormat(typeName);
  if (floats.length % nPerRow !== 0) throw new RangeError(`${floats.length} floats is not a whole number of ${nPerRow}-value rows`);
  const nRows = floats.length / nPerRow;
  const op = { chunk: "quantize-chunk", ref: "quantize-ref", cpu: "quantize-cpu" }[how];
  const args = [op, format.name, String(format.ggmlType), String(nPerRow), String(nRows), String(rowBytes(format, nPerRow))];
  if (how === "cpu") args.push(ggmlCpuVariant());
  return new Uint8Array(run(args, bytesOf(floats)));
}

/** Decode `n` values (one row) of `typeName` bytes with llama.cpp's dequantize_row_<type>. */
export function ggmlDequantize(typeName: string, bytes: Uint8Array, n: number): Float32Array {
  const format = getFormat(typeName);
  const out = run(["dequantize", format.name, String(format.ggmlType), String(n), "1", String(rowBytes(format, n))], bytes);
  return new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}

/**
 * llama.cpp's CPU vec_dot: for each r, dot(rows[r], partners[r]) with rows in `typeName` and partners in its
 * dot-partner format, `nPerRow` values each. Returns (nRows) floats.
 */
export function ggmlCpuVecDot(typeName: string, rows: Uint8Array, partners: Uint8Array, nPerRow: number, nRows: number): Float32Array {
  const format = getFormat(typeName);
  const partner = getFormat(format.dotPartner);
  const args = ["dot-cpu", format.name, String(format.ggmlType), String(nPerRow), String(nRows), String(rowBytes(format, nPerRow))];
  args.push(ggmlCpuVariant(), String(rowBytes(partner, nPerRow)));
  const input = new Uint8Array(rows.length + partners.length);
  input.set(rows, 0);
  input.set(partners, rows.length);
  const out = run(args, input);
  return new Float32Array(out.buffer.slice(out.byteOffset, out.byteOffset + out.byteLength));
}

/** ggml_get_type_traits' name, block size and bytes per block for the type (checks the struct this bridge declares). */
export function ggmlDescribe(typeName: string): { name: string; blockSize: number; bytesPerBlock: number } {
  const format = getFormat(typeName);
  const [name, blockSize, bytesPerBlock] = run(["describe", format.name, String(format.ggmlType), "0", "0", "0"], new Uint8Array())
    .toString()
    .trim()
    .split(" ");
  return { name, blockSize: Number(blockSize), bytesPerBlock: Number(bytesPerBlock) };
}
