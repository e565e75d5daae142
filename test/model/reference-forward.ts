/**
 * A float64 reference forward pass of the Llama family (llama incl. Llama 3.x rope frequency factors, qwen2), written
 * independently of the engine: scalar TypeScript, weights decoded with the formats' reference kernels, every sum in
 * float64, an unquantized cache. Architecture details come straight from the file: biases wherever a `*.bias` tensor
 * exists, rope pairing by general.architecture (qwen2: halves, as GPT-NeoX; otherwise adjacent), angles divided by
 * `rope_freqs.weight` when present and scaled by the linear `rope.scaling.*` keys.
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
  /** Rotate (x[i], x[i + headDim/2]) instead of (x[2i], x[2i+1]). */
  private readonly halvesPaired: boolean;
  /** (ropeDim/2): angle per position of each rotated pair. */
  private readonly ropeAngle: Float64Array;
  /** Multiplies cos and sin. */
  private readonly ropeMagnitude: number;

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
    const arch = file.metadata.get("general.architecture");
    this.halvesPaired = arch === "qwen2";
    const meta = (key: string): unknown => file.metadata.get(`${arch}.${key}`);
    const base = Number(meta("rope.freq_base") ?? 10000);
    const scalingType = meta("rope.scaling.type") ?? "linear";
    const factor = Number(meta("rope.scaling.factor") ?? meta("rope.scale_linear") ?? 0);
    const linearScale = scalingType !== "none" && factor !== 0 ? 1 / factor : 1;
    this.ropeMagnitude = Number(meta("rope.scaling.attn_factor") ?? 1);
    const divisors = this.m.get("rope_freqs.weight")?.data;
    const nPairs = c.headDim / 2;
    this.ropeAngle = new Float64Array(nPairs);
    for (let i = 0; i < nPairs; i++) {
      this.ropeAngle[i] = (linearScale * Math.pow(base, -i / nPairs)) / (divisors ? divisors[i] : 1);
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
      const q = this.linear(p + "attn_q", h);
      const k = this.linear(p + "attn_k", h);
      const v = this.linear(p + "attn_v", h);
      this.rope(q, pos);
      this.rope(k, pos);
      this.keys[l].push(k);
      this.values[l].push(v);
      const att = this.attention(l, q);
      x = add(x, this.linear(p + "attn_output", att));
      const h2 = this.rmsnorm(x, p + "ffn_norm.weight");
      const gate = this.linear(p + "ffn_gate", h2);
      const up = this.linear(p + "ffn_up", h2);
      const act = gate.map((g, i) => (g / (1 + Math.exp(-g))) * up[i]);
      x = add(x, this.linear(p + "ffn_down", act));
    }
    const hOut = this.rmsnorm(x, "output_norm.weight");
    const logits = this.matmul(this.m.has("output.weight") ? "output.weight" : "token_embd.weight", hOut);
    return this.withBias(logits, "output.bias");
  }

  /** W·x + b for the tensors `<name>.weight` and, when the file has it, `<name>.bias`. */
  private linear(name: string, x: Float64Array): Float64Array {
    return this.withBias(this.matmul(`${name}.weight`, x), `${name}.bias`);
  }

  private withBias(y: Float64Array, biasName: string): Float64Array {
    const b = this.m.get(biasName);
    return b ? y.map((v, i) => v + b.data[i]) : y;
  }

  /** Rotary embedding of every head of `x` at position `pos`. */
  private rope(x: Float64Array, pos: number): void {
    const hd = this.c.headDim;
    const nPairs = hd / 2;
    for (let h = 0; h < x.length / hd; h++) {
      for (let i = 0; i < nPairs; i++) {
        const theta = pos * this.ropeAngle[i];
        const cos = this.ropeMagnitude * Math.cos(theta);
        const sin = this.ropeMagnitude * Math.sin(theta);
        const a = h * hd + (this.halvesPaired ? i : 2 * i);
        const b = this.halvesPaired ? a + nPairs : a + 1;
        const [x0, x1] = [x[a], x[b]];
        x[a] = x0 * cos - x1 * sin;
        x[b] = x0 * sin + x1 * cos;
      }
    }
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

function add(a: Float64Array, b: Float64Array): Float64Array {
  return a.map((v, i) => v + b[i]);
}
