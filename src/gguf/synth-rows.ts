/**
 * The random rows of a synthetic tensor, shared by the main thread and the synth workers (synth-threads.ts):
 * the normal stream (xoshiro128** seeded through splitmix32, Box-Muller pairs), and a per-thread quantizer that fills
 * rows in its own WebAssembly memory and runs the format's `quantizeRow_<fmt>` kernel on them.
 *
 * The stream is the one synth has always written: value i of a tensor is mean + std × (the i-th Rng.normal()), where
 * normal() draws two u32s per pair, u1 then u2, and returns r·cos θ then r·sin θ (r = √(−2 ln u1), θ = 2π u2,
 * u = (u32 + 0.5) / 2^32). A pair never spans two threads' chunks: chunks start at even value indices.
 *
 * Each thread has its own WebAssembly.Memory: the K-quant quantizers keep a static scratch area (assembly/formats/
 * kquants.ts), so two threads must never run them in one memory.
 */
import { getFormat, rowBytes } from "../formats/table.js";
import { WasmRuntime } from "../runtime/wasm.js";

/** xoshiro128** state (4 words, as int32) seeded through splitmix32. */
export function seedState(seed: number): Int32Array {
  const s = new Int32Array(4);
  let x = seed >>> 0;
  for (let i = 0; i < 4; i++) {
    x = (x + 0x9e3779b9) >>> 0;
    let z = x;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    s[i] = z ^ (z >>> 16);
  }
  return s;
}

const TWO_PI = 2 * Math.PI;

/**
 * out[from..to) = mean + std × N(0, 1), continuing the stream in `state` (updated). `from` must start a pair (the
 * caller's chunk boundaries are even value indices); an odd count drops the last pair's second value, which only
 * happens at the end of a tensor (each tensor has its own stream).
 * Profiled: ~20 ns of CPU per value, of which Math.log/sin/cos are ~11 and xoshiro ~2; the old per-value
 * Rng.normal() with its Uint32Array state and spare was ~40.
 */
export function fillNormal(state: Int32Array, out: Float32Array, from: number, to: number, mean: number, std: number): void {
  let s0 = state[0]!, s1 = state[1]!, s2 = state[2]!, s3 = state[3]!;
  for (let i = from; i < to; i += 2) {
    let u1 = Math.imul(s1, 5);
    u1 = Math.imul((u1 << 7) | (u1 >>> 25), 9);
    let t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
    let u2 = Math.imul(s1, 5);
    u2 = Math.imul((u2 << 7) | (u2 >>> 25), 9);
    t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
    // The same double operations, in the same order, as Rng.uniform() and Rng.normal() did.
    const r = Math.sqrt(-2 * Math.log(((u1 >>> 0) + 0.5) / 4294967296));
    const theta = TWO_PI * (((u2 >>> 0) + 0.5) / 4294967296);
    out[i] = mean + std * (r * Math.cos(theta));
    if (i + 1 < to) out[i + 1] = mean + std * (r * Math.sin(theta));
  }
  state[0] = s0; state[1] = s1; state[2] = s2; state[3] = s3;
}

/** Advance `state` past n values (n even: whole pairs, two u32 draws each) without computing them. */
export function skipNormals(state: Int32Array, n: number): void {
  let s0 = state[0]!, s1 = state[1]!, s2 = state[2]!, s3 = state[3]!;
  for (let i = 0; i < n; i++) {
    const t = s1 << 9;
    s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3; s2 ^= t; s3 = (s3 << 11) | (s3 >>> 21);
  }
  state[0] = s0; state[1] = s1; state[2] = s2; state[3] = s3;
}

/** One tensor's rows: `rows` rows of ne0 values, mean + std × N(0, 1), each quantized to `format`. */
export interface RowsJob {
  /** A weight format name of the table (f32, f16, q8_0, q2_K .. q6_K, ...). */
  format: string;
  ne0: number;
  rows: number;
  mean: number;
  std: number;
}

/** Values per chunk, about: 1 MiB of f32, big enough that claiming costs nothing, small enough to balance. */
const CHUNK_VALUES = 1 << 18;

/** Rows per chunk: whole rows, and an even number of values so that no Box-Muller pair spans two chunks. */
export function rowsPerChunk(job: RowsJob): number {
  let rows = Math.max(1, Math.floor(CHUNK_VALUES / job.ne0));
  if (job.ne0 % 2 === 1 && rows % 2 === 1) rows++;
  return Math.min(rows, job.rows);
}

export function chunkCount(job: RowsJob): number {
  return Math.ceil(job.rows / rowsPerChunk(job));
}

/** One thread's quantizer: a private WebAssembly memory with room for a chunk's f32 rows and their bytes. */
export class RowQuantizer {
  private readonly rt = new WasmRuntime();
  private src = 0;
  private dst = 0;
  private srcBytes = 0;
  private dstBytes = 0;

  /**
   * Rows [r0, r1) of the job into `out` (their bytes, (r1 − r0) × rowBytes), the values continuing `state`
   * (updated: it then stands at row r1).
   */
  quantizeRows(job: RowsJob, r0: number, r1: number, state: Int32Array, out: Uint8Array): void {
    const format = getFormat(job.format);
    const bytesPerRow = rowBytes(format, job.ne0);
    const n = (r1 - r0) * job.ne0;
    const nBytes = (r1 - r0) * bytesPerRow;
    if (out.length !== nBytes) throw new RangeError(`synth: ${r1 - r0} rows of ${job.format} need ${nBytes} bytes, got ${out.length}`);
    this.reserve(n * 4, nBytes);
    fillNormal(state, this.rt.f32(this.src, n), 0, n, job.mean, job.std);
    const quantize = this.rt.k[format.kernels.quantizeRow]!;
    for (let r = 0; r < r1 - r0; r++) quantize(this.src + r * job.ne0 * 4, this.dst + r * bytesPerRow, job.ne0);
    out.set(this.rt.u8(this.dst, nBytes));
  }

  private reserve(srcBytes: number, dstBytes: number): void {
    if (srcBytes > this.srcBytes) {
      if (this.srcBytes > 0) this.rt.free(this.src);
      this.src = this.rt.alloc(srcBytes);
      this.srcBytes = srcBytes;
    }
    if (dstBytes > this.dstBytes) {
      if (this.dstBytes > 0) this.rt.free(this.dst);
      this.dst = this.rt.alloc(dstBytes);
      this.dstBytes = dstBytes;
    }
  }
}
