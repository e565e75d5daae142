/**
 * Model weights copied once from the GGUF file into WebAssembly memory, in their stored block format.
 * Matrices stay packed (their format's matvec reads them); 1-D tensors (norms, biases) are decoded to f32 at load.
 * Tensors that only some models have (biases, Llama 3's rope frequency factors) are null when absent, as llama.cpp
 * treats them (TENSOR_NOT_REQUIRED): the forward pass adds a bias only where one exists.
 */
import type { ByteSource, GgufFile, GgufTensorInfo } from "../gguf/types.js";
import { TILE_GROUP_ROWS, type BlockFormat } from "../formats/types.js";
import { rowBytes } from "../formats/table.js";
import type { Shards } from "../runtime/shards.js";
import type { WasmRuntime } from "../runtime/wasm.js";
import type { ModelConfig } from "./config.js";
import { ModelError } from "./errors.js";
import { PlacementError, placeWeights, type WeightPlacement } from "./placement.js";

/** A packed matrix of `rows` rows, each `cols` values in `format` (GGUF shape [cols, rows]). */
export interface WeightMatrix {
  readonly name: string;
  /** The shard whose memory holds it (src/runtime/shards.ts). */
  readonly shard: number;
  readonly ptr: number; // (rows, rowBytes) packed blocks, in the shard's memory; tiled: (rows / 4) tiles of 4 × rowBytes
  readonly format: BlockFormat;
  /** Rows repacked four at a time into format.tiled's layout (its kernels read the matrix); false: the file's rows. */
  readonly tiled: boolean;
  readonly rows: number;
  readonly cols: number;
  readonly rowBytes: number;
}

/** An f32 vector (norm gains). */
export interface WeightVector {
  readonly name: string;
  readonly shard: number;
  readonly ptr: number; // f32 (n), in the shard's memory
  readonly n: number;
}

export interface LayerWeights {
  readonly attnNorm: WeightVector; // (dim)
  readonly wq: WeightMatrix; // (nHeads*headDim, dim)
  readonly wk: WeightMatrix; // (kvDim, dim)
  readonly wv: WeightMatrix; // (kvDim, dim)
  readonly wo: WeightMatrix; // (dim, nHeads*headDim)
  readonly bq: WeightVector | null; // (nHeads*headDim): qwen2
  readonly bk: WeightVector | null; // (kvDim): qwen2
  readonly bv: WeightVector | null; // (kvDim): qwen2
  readonly bo: WeightVector | null; // (dim)
  readonly ffnNorm: WeightVector; // (dim)
  readonly wGate: WeightMatrix; // (ffnDim, dim)
  readonly wUp: WeightMatrix; // (ffnDim, dim)
  readonly wDown: WeightMatrix; // (dim, ffnDim)
  readonly bGate: WeightVector | null; // (ffnDim)
  readonly bUp: WeightVector | null; // (ffnDim)
  readonly bDown: WeightVector | null; // (dim)
}

export interface LlamaWeights {
  /** (nLayers) the shard holding each layer's tensors; the embedding, output norm and output live in shard 0. */
  readonly layerShard: readonly number[];
  readonly tokenEmbd: WeightMatrix; // (nVocab, dim)
  readonly layers: readonly LayerWeights[];
  readonly outputNorm: WeightVector; // (dim)
  /** (nVocab, dim); the embedding itself when the model ties them (no output.weight). */
  readonly output: WeightMatrix;
  readonly outputBias: WeightVector | null; // (nVocab)
  /**
   * (ropeDim/2) divisors of the rope frequencies (`rope_freqs.weight`, Llama 3.x), read into JS for the rope table;
   * null when the model has none (all 1).
   */
  readonly ropeFreqFactors: Float32Array | null;
  /** Bytes of WebAssembly memory the weights occupy (all shards). */
  readonly bytes: number;
}

const ALIGN = 64;

/** Bytes a tensor takes in WebAssembly memory: packed as stored, 1-D tensors decoded to f32; 64-byte aligned. */
function placedBytes(t: GgufTensorInfo): number {
  return align(t.shape.length === 1 ? t.nElements * 4 : t.byteSize);
}

/** Bytes the weights will take in WebAssembly memory, all shards together (for the plan before any allocation). */
export function weightBytes(file: GgufFile): number {
  let total = 0;
  for (const t of file.tensors) total += placedBytes(t);
  return total;
}

/** The layer a tensor belongs to (`blk.N.`), or -1 for the head tensors (embedding, output, norms, rope factors). */
function layerOf(t: GgufTensorInfo, nLayers: number): number {
  const m = /^blk\.(\d+)\./.exec(t.name);
  const l = m ? Number(m[1]) : -1;
  return l >= 0 && l < nLayers ? l : -1;
}

/** Where each layer's weights go, for shards of `shardBytes` with `shardScratch` kept free in each. */
export function planWeightPlacement(file: GgufFile, c: ModelConfig, shardBytes: number, shardScratch: number): WeightPlacement {
  let head = 0;
  const layers = new Array<number>(c.nLayers).fill(0);
  for (const t of file.tensors) {
    const l = layerOf(t, c.nLayers);
    if (l < 0) head += placedBytes(t);
    else layers[l] += placedBytes(t);
  }
  try {
    return placeWeights(head, layers, shardBytes, shardScratch);
  } catch (e) {
    if (e instanceof PlacementError) throw new ModelError(`${e.message} (a WebAssembly memory holds at most ${shardBytes} bytes)`, file.name);
    throw e;
  }
}

/**
 * Copy every tensor into the shard the placement names (shard 0 for the head tensors), adding shards as needed.
 * Each shard's tensors are one allocation. With `tile`, the matrices whose format has a four-row layout
 * (BlockFormat.tiled) and whose rows are a multiple of 4 are repacked into it, but for the token embedding, whose rows
 * are read one by one.
 */
export function loadWeights(shards: Shards, file: GgufFile, src: ByteSource, c: ModelConfig, placement: WeightPlacement, tile = false): LlamaWeights {
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const need = (name: string): GgufTensorInfo => {
    const t = byName.get(name);
    if (!t) throw new ModelError(`tensor ${name} is missing`, file.name);
    return t;
  };
  const total = weightBytes(file);
  const cursors: number[] = placement.shardWeights.map((bytes, s) => {
    const rt = s < shards.runtimes.length ? shards.runtimes[s] : shards.add();
    return rt.alloc(bytes, ALIGN);
  });
  const placed = new Map<string, { shard: number; ptr: number }>();
  const place = (t: GgufTensorInfo, shard: number): { shard: number; ptr: number; rt: WasmRuntime } => {
    const hit = placed.get(t.name) ?? { shard, ptr: cursors[shard] };
    if (!placed.has(t.name)) {
      cursors[shard] += placedBytes(t);
      placed.set(t.name, hit);
    }
    return { ...hit, rt: shards.runtimes[hit.shard] };
  };
  const shardOf = (t: GgufTensorInfo): number => {
    const l = layerOf(t, c.nLayers);
    return l < 0 ? 0 : placement.layerShard[l];
  };

  const matrix = (name: string, rows: number, cols: number, tileable = tile): WeightMatrix => {
    const t = need(name);
    if (t.shape.length !== 2 || t.shape[0] !== cols || t.shape[1] !== rows) {
      throw new ModelError(`tensor ${name} has shape [${t.shape}], expected [${cols}, ${rows}]`, file.name);
    }
    if (!t.format.weight) {
      throw new ModelError(`tensor ${name} is stored as ${t.format.name}, which kvsplit cannot use for weights`, file.name);
    }
    let rb: number;
    try {
      rb = rowBytes(t.format, cols);
    } catch {
      throw new ModelError(`tensor ${name}: rows of ${cols} values are not whole ${t.format.name} blocks`, file.name);
    }
    const { shard, ptr, rt } = place(t, shardOf(t));
    copyTensor(rt, src, t, ptr);
    const tiled = tileable && t.format.tiled !== undefined && rows % 4 === 0;
    if (tiled) repackTiles(rt, t.format, ptr, rows, cols, rb);
    return { name, shard, ptr, format: t.format, tiled, rows, cols, rowBytes: rb };
  };

  const vector = (name: string, n: number): WeightVector => {
    const t = need(name);
    if (t.nElements !== n || t.shape.length !== 1) {
      throw new ModelError(`tensor ${name} has shape [${t.shape}], expected [${n}]`, file.name);
    }
    const { shard, ptr, rt } = place(t, shardOf(t));
    const raw = src.read(t.offset, t.byteSize);
    t.format.reference.dequantizeRow(raw, rt.f32(ptr, n));
    return { name, shard, ptr, n };
  };

  const optionalVector = (name: string, n: number): WeightVector | null => (byName.has(name) ? vector(name, n) : null);

  const qDim = c.nHeads * c.headDim;
  const layers: LayerWeights[] = [];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `blk.${l}.`;
    if (byName.has(p + "attn_qkv.weight")) {
      throw new ModelError(`tensor ${p}attn_qkv.weight: fused q/k/v matrices are not supported (expected attn_q, attn_k, attn_v)`, file.name);
    }
    layers.push({
      attnNorm: vector(p + "attn_norm.weight", c.dim),
      wq: matrix(p + "attn_q.weight", qDim, c.dim),
      wk: matrix(p + "attn_k.weight", c.kvDim, c.dim),
      wv: matrix(p + "attn_v.weight", c.kvDim, c.dim),
      wo: matrix(p + "attn_output.weight", c.dim, qDim),
      bq: optionalVector(p + "attn_q.bias", qDim),
      bk: optionalVector(p + "attn_k.bias", c.kvDim),
      bv: optionalVector(p + "attn_v.bias", c.kvDim),
      bo: optionalVector(p + "attn_output.bias", c.dim),
      ffnNorm: vector(p + "ffn_norm.weight", c.dim),
      wGate: matrix(p + "ffn_gate.weight", c.ffnDim, c.dim),
      wUp: matrix(p + "ffn_up.weight", c.ffnDim, c.dim),
      wDown: matrix(p + "ffn_down.weight", c.dim, c.ffnDim),
      bGate: optionalVector(p + "ffn_gate.bias", c.ffnDim),
      bUp: optionalVector(p + "ffn_up.bias", c.ffnDim),
      bDown: optionalVector(p + "ffn_down.bias", c.dim),
    });
  }
  const tokenEmbd = matrix("token_embd.weight", c.nVocab, c.dim, false);
  const output = byName.has("output.weight") ? matrix("output.weight", c.nVocab, c.dim) : tokenEmbd;
  return {
    layerShard: placement.layerShard,
    tokenEmbd,
    layers,
    outputNorm: vector("output_norm.weight", c.dim),
    output,
    outputBias: optionalVector("output.bias", c.nVocab),
    ropeFreqFactors: byName.has(ROPE_FREQS) ? ropeFreqFactors(need(ROPE_FREQS), src, c, file.name) : null,
    bytes: total,
  };
}

/** The one rope-frequency tensor llama.cpp reads for every layer of a Llama 3.x model. */
const ROPE_FREQS = "rope_freqs.weight";

/** rope_freqs.weight decoded to f32: (ropeDim/2) positive divisors. */
function ropeFreqFactors(t: GgufTensorInfo, src: ByteSource, c: ModelConfig, fileName: string): Float32Array {
  const n = c.ropeDim / 2;
  if (t.shape.length !== 1 || t.nElements !== n) {
    throw new ModelError(`tensor ${t.name} has shape [${t.shape}], expected [${n}] (rope.dimension_count / 2)`, fileName);
  }
  const factors = new Float32Array(n); // (ropeDim/2)
  t.format.reference.dequantizeRow(src.read(t.offset, t.byteSize), factors);
  const bad = factors.findIndex((f) => !(f > 0) || !Number.isFinite(f));
  if (bad >= 0) throw new ModelError(`tensor ${t.name}[${bad}] is ${factors[bad]}; rope frequency factors must be positive`, fileName);
  return factors;
}

/**
 * Copy a tensor's bytes from the file into WebAssembly memory: read straight into it where the source can (a file),
 * else in slices so no huge temporary exists.
 */
function copyTensor(rt: WasmRuntime, src: ByteSource, t: GgufTensorInfo, ptr: number): void {
  if (src.readInto) {
    src.readInto(t.offset, rt.u8(ptr, t.byteSize));
    return;
  }
  const SLICE = 16 << 20;
  for (let done = 0; done < t.byteSize; done += SLICE) {
    const n = Math.min(SLICE, t.byteSize - done);
    rt.u8(ptr + done, n).set(src.read(t.offset + done, n));
  }
}

/** Repack a matrix in place into its format's four-row layout (scratch: a group of tiles' rows, freed after). */
function repackTiles(rt: WasmRuntime, format: BlockFormat, ptr: number, rows: number, cols: number, rowBytes: number): void {
  const scratch = rt.alloc(TILE_GROUP_ROWS * rowBytes); // (TILE_GROUP_ROWS, rowBytes)
  try {
    rt.k[format.tiled!.repack](ptr, rows, cols, scratch);
  } finally {
    rt.free(scratch);
  }
}

function align(n: number): number {
  return Math.ceil(n / ALIGN) * ALIGN;
}

