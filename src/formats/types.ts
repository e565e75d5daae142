/** The shape every block format shares: one entry of THE format table (table.ts). */

/**
 * Formats a KV cache side (K or V) may be stored in: llama.cpp's, then kvsplit's own codebook formats (iq3_nl, iq2_nl;
 * iq3_e8, iq2_e8 with one-byte scales).
 */
export const KV_FORMAT_NAMES = ["f32", "f16", "bf16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0", "iq4_nl", "iq3_nl", "iq2_nl", "iq3_e8", "iq2_e8"] as const;
export type KvFormatName = (typeof KV_FORMAT_NAMES)[number];

/** Formats the rows of exact windows and sinks may take (SessionOptions.kvExactFormat): f16, or q8_0 at 8.5 bits. */
export const EXACT_FORMAT_NAMES = ["f16", "q8_0"] as const;
export type ExactFormatName = (typeof EXACT_FORMAT_NAMES)[number];

/** Whether `name` is one of EXACT_FORMAT_NAMES (option values from users and files are checked with it). */
export function isExactFormatName(name: string): name is ExactFormatName {
  return (EXACT_FORMAT_NAMES as readonly string[]).includes(name);
}

/** Weight-only formats: llama.cpp's K-quants (256-value super-blocks). */
export type WeightOnlyFormatName = "q2_K" | "q3_K" | "q4_K" | "q5_K" | "q6_K";

/** Every format in the table: KV formats, weight-only formats, and the activation partners q8_1 and q8_K. */
export type FormatName = KvFormatName | WeightOnlyFormatName | "q8_1" | "q8_K";

/** Scalar TypeScript reference kernels: the test oracle for the WebAssembly ones. */
export interface ReferenceKernels {
  /** Quantize `src.length` floats (a whole number of blocks) into `dst` (rowBytes bytes), exactly as llama.cpp's reference quantizer. */
  quantizeRow(src: Float32Array, dst: Uint8Array): void;
  /** Decode `dst.length` values (a whole number of blocks) from `src`. */
  dequantizeRow(src: Uint8Array, dst: Float32Array): void;
  /**
   * Dot product of a row in this format (n values) with a row `x` already converted to the dot partner format
   * (same n), computed the way llama.cpp's vec_dot does (integer sums per block, then scaled), in float64 where it sums blocks.
   */
  dot(row: Uint8Array, x: Uint8Array, n: number): number;
}

export interface BlockFormat {
  /** llama.cpp's name: "q8_0", "f16", ... */
  readonly name: FormatName;
  /**
   * The GGML type id used in GGUF tensor tables (ggml.h enum ggml_type), also the type code the WebAssembly kernels
   * take. kvsplit's own formats (isOwnFormat) have ids from OWN_FORMAT_IDS up, which no GGUF file holds.
   */
  readonly ggmlType: number;
  /** Values per block (1 for f32/f16/bf16). */
  readonly blockSize: number;
  readonly bytesPerBlock: number;
  /** The format the other operand of this format's dot product is converted to (llama.cpp's vec_dot_type). */
  readonly dotPartner: FormatName;
  /** May be stored in the KV cache. */
  readonly kv: boolean;
  /** May hold model weights. */
  readonly weight: boolean;
  readonly reference: ReferenceKernels;
  /**
   * Names of the WebAssembly exports (assembly/formats/<name>.ts):
   *   quantizeRow_<name>(src f32*, dst u8*, n)                  n a multiple of blockSize
   *   dequantizeRow_<name>(src u8*, dst f32*, n)
   *   dot_<name>(row u8*, x partner*, n) -> f32                 x already in dotPartner format
   *   axpy_<name>(out f32*, w f32, row u8*, n)                  out[i] += w * value[i]
   *   matvec_<name>(w u8*, x partner*, out f32*, rowStart, rowEnd, cols)   out[r] = dot(W[r], x), rows of `cols` values
   *   matmul_<name>(w u8*, x partner*, out f32*, rowStart, rowEnd, cols, nTokens, xStride, outStride)
   *       out[t][r] = dot(W[r], X[t]) for r in [rowStart, rowEnd), t in [0, nTokens); X is nTokens partner rows
   *       xStride bytes apart, out rows (f32) outStride bytes apart; equals matvec per token bit for bit
   */
  readonly kernels: {
    readonly quantizeRow: string;
    readonly dequantizeRow: string;
    readonly dot: string;
    readonly axpy: string;
    readonly matvec: string;
    readonly matmul: string;
  };
  /**
   * Weight formats with a four-row layout (assembly/formats/<name>_x4.ts): a matrix of whole tiles repacked in place at
   * load (same bytes) for kernels whose i32 lanes are four rows; the products equal the row layout's bit for bit.
   *   repack_<name>_x4(w, rows, cols, scratch) / unpack_<name>_x4(...)    in place; scratch: TILE_GROUP_ROWS rows' bytes
   *   matvec_<name>_x4, matmul_<name>_x4      matvec_/matmul_'s arguments, then scratch: tiledScratchBytes() bytes of
   *                                           the calling thread's own; row ranges multiples of 4, and of
   *                                           TILE_GROUP_ROWS (or ending at the last row) for q8_0 rows of over 96 blocks
   * Their input is the dot partner's rows, or, where `input` is set, a layout of the tiled kernels' own.
   */
  readonly tiled?: TiledKernels;
}

/**
 * Rows per group of tiles (assembly/formats/tiles.ts GROUP_ROWS): a repack's scratch holds a group's rows, and products
 * over q8_0 matrices stored in column segments take row ranges on group boundaries.
 */
export const TILE_GROUP_ROWS = 32;

/** Export names of a format's four-row layout kernels (BlockFormat.tiled). */
export interface TiledKernels {
  readonly repack: string;
  readonly unpack: string;
  readonly matvec: string;
  readonly matmul: string;
  /**
   * The tiled kernels' own input layout, where they do not take the dot partner's rows: its bytes per block of the
   * partner's blockSize values, and the export that writes it (with the partner's rows on the way):
   *   <quantizeRows>(src f32*, partner u8*, dst u8*, rowStart, rowEnd, cols)    rows [rowStart, rowEnd) of (nTokens, cols)
   */
  readonly input?: { readonly quantizeRows: string; readonly bytesPerBlock: number };
  /**
   * An export `() => bool` saying whether this instance took the layout of one dot per 16 products (q8_0: offset
   * weights, where the engine's relaxed dot allows it): then the tiled kernels beat the widened rows at every batch.
   */
  readonly oneDot?: string;
}

/** The four-row layout's kernel names follow one rule too (`input`: the tiled kernels' own input layout, if any; `oneDot`: see TiledKernels). */
export function tiledKernelNames(name: FormatName, input?: TiledKernels["input"], oneDot?: string): TiledKernels {
  return { repack: `repack_${name}_x4`, unpack: `unpack_${name}_x4`, matvec: `matvec_${name}_x4`, matmul: `matmul_${name}_x4`, ...(input ? { input } : {}), ...(oneDot ? { oneDot } : {}) };
}

/** kvsplit's own formats (not llama.cpp's) have type ids from here up. */
export const OWN_FORMAT_IDS = 1000;

/** Whether the format is kvsplit's own (iq3_nl, iq2_nl, iq3_e8, iq2_e8): llama.cpp cannot store or read it. */
export function isOwnFormat(format: Pick<BlockFormat, "ggmlType">): boolean {
  return format.ggmlType >= OWN_FORMAT_IDS;
}

/** Kernel export names follow one rule, so the table never spells them out by hand. */
export function kernelNames(name: FormatName): BlockFormat["kernels"] {
  return {
    quantizeRow: `quantizeRow_${name}`,
    dequantizeRow: `dequantizeRow_${name}`,
    dot: `dot_${name}`,
    axpy: `axpy_${name}`,
    matvec: `matvec_${name}`,
    matmul: `matmul_${name}`,
  };
}
