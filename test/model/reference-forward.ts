/**
 * A float64 reference forward pass of the Llama architecture, written independently of the engine:
 * scalar TypeScript, weights decoded with the formats' reference kernels, every sum in float64, an unquantized cache.
 * With `emulatePartner`, each matmul input is first rounded through its weight format's dot partner (q8_0, f16, ...)
 * as llama.cpp (and the engine) do, so quantized-weight models can be compared tightly too.
 */
import { getFormat, rowBytes } from "../../src/formats/table.js";
import type { GgufFile, ByteSource, GgufTensorInfo } from "../../src/gguf/types.js";
import type { ModelConfig } from "../../src/model/config.js";

interface Matrix {
  rows: number;
  cols: number;
  data: Float64Array; // (rows, cols)
  partner: string;
}

export class ReferenceLlama {
  private readonly m = new Map<string, Matrix>();
  private readonly keys: Float64Array[][] = []; // (layer)(pos) → (kvDim)
  private readonly values: Float64Array[][] = [];

  constructor(
    private readonly c: ModelConfig,
    file: GgufFile,
    src: ByteSource,
    private readonly emulatePartner: boolean,
  ) {
    for (const t of file.tensors) this.m.set(t.name, decode(t, src));
    for (let l = 0; l < c.nLayers; l++) {
      this.keys.push([]);
      this.values.push([]);
    }
  }

  /** Next-token logits after feeding `token` at the next position. */
  step(token: number): Float64Array {
    const c = this.c;
    const pos = this.keys[0].length;
    const emb = this.m.get("token_embd.weight")!;
    let x: Float64Array = emb.data.slice(token * c.dim, (token + 1) * c.dim);
    for (let l = 0; l < c.nLayers; l++) {
      const p = `blk.${l}.`;
      const h = this.rmsnorm(x, p + "attn_norm.weight");
      const q = this.matmul(p + "attn_q.weight", h);
      const k = this.matmul(p + "attn_k.weight", h);
      const v = this.matmul(p + "attn_v.weight", h);
      rope(q, c, pos);
      rope(k, c, pos);
      this.keys[l].push(k);
      this.values[l].push(v);
      const att = this.attention(l, q);
      x = add(x, this.matmul(p + "attn_output.weight", att));
      const h2 = this.rmsnorm(x, p + "ffn_norm.weight");
      const gate = this.matmul(p + "ffn_gate.weight", h2);
      const up = this.matmul(p + "ffn_up.weight", h2);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      x = add(x, this.matmul(p + "ffn_down.weight", act));
    }
    const out = this.m.has("output.weight") ? "output.weight" : "token_embd.weight";
    return this.matmul(out, this.rmsnorm(x, "output_norm.weight"));
  }

  private attention(l: number, q: Float64Array): Float64Array {
    const c = this.c;
    const out = new Float64Array(c.nHeads * c.headDim);
    const group = c.nHeads / c.nKvHeads;
    const nPos = this.keys[l].length;
    for (let h = 0; h < c.nHeads; h++) {
      const kvh = Math.floor(h / group);
      const scores = new Float64Array(nPos);
      for (let t = 0; t < nPos; t++) {
        let s = 0;
        for (let i = 0; i < c.headDim; i++) s += q[h * c.headDim + i] * this.keys[l][t][kvh * c.headDim + i];
        scores[t] = s / Math.sqrt(c.headDim);
      }
      const max = Math.max(...scores);
      let sum = 0;
      for (let t = 0; t < nPos; t++) sum += (scores[t] = Math.exp(scores[t] - max));
      for (let t = 0; t < nPos; t++) {
        for (let i = 0; i < c.headDim; i++) out[h * c.headDim + i] += (scores[t] / sum) * this.values[l][t][kvh * c.headDim + i];
      }
    }
    return out;
  }

  private rmsnorm(x: Float64Array, name: string): Float64Array {
    const g = this.m.get(name)!.data;
    let ss = 0;
    for (const v of x) ss += v * v;
    const scale = 1 / Math.sqrt(ss / x.length + this.c.normEps);
    return x.map((v, i) => v * scale * g[i]);
  }

  private matmul(name: string, x: Float64Array): Float64Array {
    const w = this.m.get(name)!;
    const input = this.emulatePartner ? throughPartner(x, w.partner) : x;
    const out = new Float64Array(w.rows);
    for (let r = 0; r < w.rows; r++) {
      let s = 0;
      for (let i = 0; i < w.cols; i++) s += w.data[r * w.cols + i] * input[i];
      out[r] = s;
    }
    return out;
  }
}

function decode(t: GgufTensorInfo, src: ByteSource): Matrix {
  const cols = t.shape[0];
  const rows = t.nElements / cols;
  const f32 = new Float32Array(t.nElements);
  t.format.reference.dequantizeRow(src.read(t.offset, t.byteSize), f32);
  return { rows, cols, data: Float64Array.from(f32), partner: t.format.dotPartner };
}

/** x rounded the way the engine and llama.cpp round a matmul input: to f32, then through the partner format. */
function throughPartner(x: Float64Array, partnerName: string): Float64Array {
  const partner = getFormat(partnerName);
  const f32 = Float32Array.from(x);
  if (partner.name === "f32") return Float64Array.from(f32);
  const packed = new Uint8Array(rowBytes(partner, f32.length));
  partner.reference.quantizeRow(f32, packed);
  const back = new Float32Array(f32.length);
  partner.reference.dequantizeRow(packed, back);
  return Float64Array.from(back);
}

/** Adjacent-pair rotary embedding on every head of `x`. */
function rope(x: Float64Array, c: ModelConfig, pos: number): void {
  const nHeads = x.length / c.headDim;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < c.ropeDim / 2; i++) {
      const theta = pos * Math.pow(c.ropeBase, (-2 * i) / c.ropeDim);
      const a = h * c.headDim + 2 * i;
      const [x0, x1] = [x[a], x[a + 1]];
      x[a] = x0 * Math.cos(theta) - x1 * Math.sin(theta);
      x[a + 1] = x0 * Math.sin(theta) + x1 * Math.cos(theta);
    }
  }
}

function add(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + b[i]);
}
