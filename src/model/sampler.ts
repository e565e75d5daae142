/**
 * Next-token sampling from logits, in llama.cpp's default chain order (common/common.h, src/llama-sampling.cpp):
 *   penalties → top-k → top-p → min-p → temperature → draw from softmax of what is left.
 * (The DRY, typical and XTC stages of that chain are off by default there and not offered here.)
 *   penalties  over the last penaltyLastN tokens of the context the caller passes (prompt and answer so far), each
 *          token that occurs there, counted c times: logit / repeat if logit > 0 else logit × repeat, then
 *          − c × frequency − presence (llama.cpp's llama_sampler_penalties; f32 arithmetic).
 * Rules carried over from llama.cpp:
 *   top-k  k <= 0 or k >= n: keep all; else the k highest logits.
 *   top-p  p >= 1: keep all; else softmax(logits) over the candidates (before temperature), sorted descending,
 *          keep the shortest prefix whose cumulative probability is >= p (at least one token).
 *   min-p  p <= 0: keep all; else keep tokens whose logit >= max logit + ln(p), i.e. prob >= p × max prob.
 *   temp   logits / T over what is left; T <= 0 keeps only the highest logit (greedy).
 * Greedy (temperature 0) is argmax over all logits, lowest id on ties.
 * The PRNG is our own xoshiro128** seeded through splitmix32, so a seed gives the same draws on every platform.
 */
import type { SamplingOptions } from "../api.js";

export interface SamplerSettings {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
  seed: number;
  repeatPenalty: number;
  presencePenalty: number;
  frequencyPenalty: number;
  penaltyLastN: number;
}

/** llama.cpp's defaults for the filters and penalties (off); temperature 0 (greedy) is this library's default. */
export const DEFAULT_SAMPLING: Omit<SamplerSettings, "seed"> = {
  temperature: 0, topK: 40, topP: 0.95, minP: 0.05, repeatPenalty: 1, presencePenalty: 0, frequencyPenalty: 0, penaltyLastN: 64,
};

export class SamplerOptionError extends Error {
  constructor(option: string, value: number, allowed: string) {
    super(`sampler option ${option} = ${value} is out of range; allowed: ${allowed}`);
    this.name = "SamplerOptionError";
  }
}

/** A fresh 32-bit seed from the OS random source, for when the caller gives none. */
export function randomSeed(): number {
  return crypto.getRandomValues(new Uint32Array(1))[0]!;
}

/** xoshiro128** (Blackman & Vigna) with a splitmix32-expanded 32-bit seed. */
export class Xoshiro128 {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;

  constructor(seed: number) {
    let z = seed >>> 0;
    const next = (): number => {
      z = (z + 0x9e3779b9) | 0;
      let t = z ^ (z >>> 16);
      t = Math.imul(t, 0x21f0aaad);
      t ^= t >>> 15;
      t = Math.imul(t, 0x735a2d97);
      return (t ^ (t >>> 15)) >>> 0;
    };
    this.s0 = next();
    this.s1 = next();
    this.s2 = next();
    this.s3 = next();
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  nextDouble(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

export class Sampler {
  readonly settings: SamplerSettings;
  private readonly rng: Xoshiro128;
  /** (capacity) candidate token ids; the first `count` are live. */
  private ids = new Int32Array(0);
  /** (capacity) per candidate: exp(logit - max) during top-p, then the final unnormalised weights. */
  private weights = new Float64Array(0);
  /** The logits of the current call, read by the comparator (kept so the comparator is allocated once). */
  private logits: Float32Array = new Float32Array(0);
  /** (nVocab) the penalized logits of the current call. */
  private penaltyScratch = new Float32Array(0);
  private readonly byLogitDesc = (a: number, b: number): number => {
    const d = this.logits[b]! - this.logits[a]!;
    return d !== 0 ? d : a - b;
  };
  /** True when token a ranks after token b (lower logit, or equal logit and higher id). */
  private readonly ranksAfter = (a: number, b: number): boolean => this.byLogitDesc(a, b) > 0;

  constructor(options: SamplingOptions = {}) {
    const s: SamplerSettings = {
      temperature: options.temperature ?? DEFAULT_SAMPLING.temperature,
      topK: options.topK ?? DEFAULT_SAMPLING.topK,
      topP: options.topP ?? DEFAULT_SAMPLING.topP,
      minP: options.minP ?? DEFAULT_SAMPLING.minP,
      seed: options.seed ?? randomSeed(),
      repeatPenalty: options.repeatPenalty ?? DEFAULT_SAMPLING.repeatPenalty,
      presencePenalty: options.presencePenalty ?? DEFAULT_SAMPLING.presencePenalty,
      frequencyPenalty: options.frequencyPenalty ?? DEFAULT_SAMPLING.frequencyPenalty,
      penaltyLastN: options.penaltyLastN ?? DEFAULT_SAMPLING.penaltyLastN,
    };
    if (!Number.isFinite(s.temperature) || s.temperature < 0) throw new SamplerOptionError("temperature", s.temperature, ">= 0 (0 = greedy)");
    if (!Number.isInteger(s.topK)) throw new SamplerOptionError("topK", s.topK, "an integer (<= 0 = off)");
    if (!(s.topP >= 0 && s.topP <= 1)) throw new SamplerOptionError("topP", s.topP, "0..1 (1 = off)");
    if (!(s.minP >= 0 && s.minP <= 1)) throw new SamplerOptionError("minP", s.minP, "0..1 (0 = off)");
    if (!Number.isInteger(s.seed) || s.seed < 0 || s.seed > 0xffffffff) throw new SamplerOptionError("seed", s.seed, "an integer 0..4294967295");
    if (!(s.repeatPenalty > 0 && Number.isFinite(s.repeatPenalty))) throw new SamplerOptionError("repeatPenalty", s.repeatPenalty, "> 0 (1 = off)");
    if (!(Math.abs(s.presencePenalty) <= 2)) throw new SamplerOptionError("presencePenalty", s.presencePenalty, "-2..2 (0 = off)");
    if (!(Math.abs(s.frequencyPenalty) <= 2)) throw new SamplerOptionError("frequencyPenalty", s.frequencyPenalty, "-2..2 (0 = off)");
    if (!Number.isInteger(s.penaltyLastN) || s.penaltyLastN < -1) throw new SamplerOptionError("penaltyLastN", s.penaltyLastN, "an integer >= -1 (0 = off, -1 = the whole context given)");
    this.settings = s;
    this.rng = new Xoshiro128(s.seed);
  }

  /** Whether sample() needs the recent tokens (a penalty is on). */
  get usesPenalties(): boolean {
    const s = this.settings;
    return s.penaltyLastN !== 0 && (s.repeatPenalty !== 1 || s.presencePenalty !== 0 || s.frequencyPenalty !== 0);
  }

  /**
   * The id of the next token. `logits` (nVocab) is read, never modified; `context`: the tokens so far (prompt and
   * answer), which the penalties look at (their last penaltyLastN).
   */
  sample(rawLogits: Float32Array, context: readonly number[] = []): number {
    if (rawLogits.length === 0) throw new RangeError("Sampler.sample: empty logits");
    const logits = this.usesPenalties && context.length > 0 ? this.penalized(rawLogits, context) : rawLogits;
    if (this.settings.temperature <= 0) return argmax(logits);
    const count = this.filter(logits);
    const { ids, weights } = this;

    // temperature, then a draw from softmax(logit / T) over what is left.
    const maxLogit = maxOf(logits, ids, count);
    const invT = 1 / this.settings.temperature;
    let total = 0;
    for (let i = 0; i < count; i++) {
      const w = Math.exp((logits[ids[i]!]! - maxLogit) * invT);
      weights[i] = w;
      total += w;
    }
    const target = total * this.rng.nextDouble();
    let running = 0;
    for (let i = 0; i < count; i++) {
      running += weights[i]!;
      if (running > target) return ids[i]!;
    }
    return ids[count - 1]!;
  }

  /** A copy of logits (in this sampler's scratch) with the penalties applied for the last penaltyLastN of context. */
  private penalized(logits: Float32Array, context: readonly number[]): Float32Array {
    const { repeatPenalty, presencePenalty, frequencyPenalty, penaltyLastN } = this.settings;
    if (this.penaltyScratch.length !== logits.length) this.penaltyScratch = new Float32Array(logits.length);
    const out = this.penaltyScratch; // (nVocab)
    out.set(logits);
    const recent = penaltyLastN < 0 ? context : context.slice(Math.max(0, context.length - penaltyLastN));
    const counts = new Map<number, number>();
    for (const id of recent) if (id >= 0 && id < logits.length) counts.set(id, (counts.get(id) ?? 0) + 1);
    for (const [id, count] of counts) {
      let l = out[id]!;
      l = l <= 0 ? Math.fround(l * repeatPenalty) : Math.fround(l / repeatPenalty);
      out[id] = Math.fround(l - Math.fround(Math.fround(count * frequencyPenalty) + presencePenalty));
    }
    return out;
  }

  /**
   * The ids that survive top-k, top-p and min-p for these logits (what a draw at temperature > 0 chooses among),
   * most likely first when a filter sorted them. For inspection and tests; allocates its result.
   */
  keptTokens(logits: Float32Array): number[] {
    const count = this.filter(logits);
    return Array.from(this.ids.subarray(0, count));
  }

  /** Apply top-k → top-p → min-p; the survivors are ids[0..count). Returns count (>= 1). */
  private filter(logits: Float32Array): number {
    const n = logits.length;
    const { topK, topP, minP } = this.settings;
    this.ensureCapacity(n);
    this.logits = logits;
    const { ids, weights } = this;
    let count = n;
    let sorted = false;

    // top-k: the k highest logits, sorted descending (lowest id first on ties).
    if (topK > 0 && topK < count) {
      count = selectTopK(logits, ids, topK, this.byLogitDesc, this.ranksAfter);
      sorted = true;
    } else {
      for (let i = 0; i < n; i++) ids[i] = i;
    }

    // top-p: shortest descending prefix whose cumulative softmax probability (over the candidates, before temperature) is >= p.
    if (topP < 1) {
      if (!sorted) {
        ids.subarray(0, count).sort(this.byLogitDesc);
        sorted = true;
      }
      const maxLogit = logits[ids[0]!]!;
      let sum = 0;
      for (let i = 0; i < count; i++) {
        const w = Math.exp(logits[ids[i]!]! - maxLogit);
        weights[i] = w;
        sum += w;
      }
      let cumulative = 0;
      for (let i = 0; i < count; i++) {
        cumulative += weights[i]! / sum;
        if (cumulative >= topP) {
          count = i + 1;
          break;
        }
      }
    }

    // min-p: logit >= max logit + ln(p)  <=>  prob >= p × max prob. The highest token always stays.
    if (minP > 0) {
      const minLogit = Math.fround(maxOf(logits, ids, count) + Math.fround(Math.log(minP)));
      let kept = 0;
      for (let i = 0; i < count; i++) {
        const id = ids[i]!;
        if (logits[id]! >= minLogit) ids[kept++] = id;
      }
      count = kept;
    }
    return count;
  }

  private ensureCapacity(n: number): void {
    if (this.ids.length >= n) return;
    this.ids = new Int32Array(n);
    this.weights = new Float64Array(n);
  }
}

/** Index of the largest logit, the lowest index on ties. */
export function argmax(logits: Float32Array): number {
  let best = 0;
  let bestValue = logits[0]!;
  for (let i = 1; i < logits.length; i++) {
    const v = logits[i]!;
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

function maxOf(logits: Float32Array, ids: Int32Array, count: number): number {
  let m = -Infinity;
  for (let i = 0; i < count; i++) m = Math.max(m, logits[ids[i]!]!);
  return m;
}

/**
 * Write the ids of the k largest logits into ids[0..k), sorted by `compare`; returns k.
 * A min-heap of size k over all n logits (O(n log k)), then a sort of the k survivors.
 */
function selectTopK(
  logits: Float32Array,
  ids: Int32Array,
  k: number,
  compare: (a: number, b: number) => number,
  worse: (a: number, b: number) => boolean,
): number {
  // ids[0..k) is a heap whose root is the kept token that ranks last; a better token replaces it.
  for (let i = 0; i < k; i++) {
    ids[i] = i;
    siftUp(ids, i, worse);
  }
  for (let id = k; id < logits.length; id++) {
    if (worse(ids[0]!, id)) {
      ids[0] = id;
      siftDown(ids, 0, k, worse);
    }
  }
  ids.subarray(0, k).sort(compare);
  return k;
}

function siftUp(heap: Int32Array, index: number, worse: (a: number, b: number) => boolean): void {
  let i = index;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!worse(heap[i]!, heap[parent]!)) break;
    const t = heap[i]!;
    heap[i] = heap[parent]!;
    heap[parent] = t;
    i = parent;
  }
}

function siftDown(heap: Int32Array, index: number, size: number, worse: (a: number, b: number) => boolean): void {
  let i = index;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let worst = i;
    if (left < size && worse(heap[left]!, heap[worst]!)) worst = left;
    if (right < size && worse(heap[right]!, heap[worst]!)) worst = right;
    if (worst === i) return;
    const t = heap[i]!;
    heap[i] = heap[worst]!;
    heap[worst] = t;
    i = worst;
  }
}
