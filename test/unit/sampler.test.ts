import { test } from "node:test";
import assert from "node:assert/strict";
import { Sampler, Xoshiro128, argmax, SamplerOptionError } from "../../src/model/sampler.js";

/** Deterministic pseudo-random logits for test inputs (independent of the sampler's PRNG). */
function lcgLogits(n: number, seed: number, scale = 4): Float32Array {
  const out = new Float32Array(n); // (n)
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}

/** Logits whose softmax is exactly proportional to `probs`. */
function logitsOf(probs: number[]): Float32Array {
  return Float32Array.from(probs, (p) => Math.log(p));
}

/**
 * Independent reference of llama.cpp's chain: sort all ids by logit (descending, id ascending on ties),
 * top-k prefix, top-p prefix over the renormalised softmax, min-p by probability ratio to the best.
 */
function referenceKept(logits: Float32Array, topK: number, topP: number, minP: number): number[] {
  let ids = Array.from(logits.keys()).sort((a, b) => logits[b]! - logits[a]! || a - b);
  if (topK > 0) ids = ids.slice(0, topK);
  if (topP < 1) {
    const max = logits[ids[0]!]!;
    const w = ids.map((id) => Math.exp(logits[id]! - max));
    const sum = w.reduce((a, b) => a + b, 0);
    let cum = 0;
    let keep = ids.length;
    for (let i = 0; i < ids.length; i++) {
      cum += w[i]! / sum;
      if (cum >= topP) {
        keep = i + 1;
        break;
      }
    }
    ids = ids.slice(0, keep);
  }
  if (minP > 0) {
    const max = logits[ids[0]!]!;
    ids = ids.filter((id) => Math.exp(logits[id]! - max) >= minP);
  }
  return ids;
}

test("greedy is argmax, lowest id on ties", () => {
  const s = new Sampler({ temperature: 0 });
  assert.equal(s.sample(Float32Array.of(0.1, 3, -2, 3, 2.9)), 1);
  assert.equal(s.sample(Float32Array.of(-1, -1, -1)), 0);
  assert.equal(s.sample(Float32Array.of(-Infinity, -5, -Infinity)), 1);
  const logits = lcgLogits(1000, 7);
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
  assert.equal(s.sample(logits), best);
  assert.equal(argmax(logits), best);
});

test("top-k = 1 equals greedy at any temperature", () => {
  const sampler = new Sampler({ temperature: 1.5, topK: 1, topP: 1, minP: 0, seed: 3 });
  for (let trial = 0; trial < 50; trial++) {
    const logits = lcgLogits(300, 100 + trial);
    assert.equal(sampler.sample(logits), argmax(logits));
  }
  // Ties: the lowest id wins, as in greedy.
  assert.equal(sampler.sample(Float32Array.of(1, 5, 0, 5)), 1);
});

test("a seed gives the same draws; another seed gives other draws", () => {
  const logits = lcgLogits(64, 11, 1);
  const draw = (seed: number) => {
    const s = new Sampler({ temperature: 1, topK: 0, topP: 1, minP: 0, seed });
    return Array.from({ length: 200 }, () => s.sample(logits));
  };
  assert.deepEqual(draw(42), draw(42));
  assert.notDeepEqual(draw(42), draw(43));
  const a = new Xoshiro128(1);
  const b = new Xoshiro128(1);
  for (let i = 0; i < 100; i++) {
    const x = a.nextDouble();
    assert.equal(x, b.nextDouble());
    assert.ok(x >= 0 && x < 1);
  }
});

test("draws follow softmax(logits / T) (chi-square, 7 degrees of freedom)", () => {
  const logits = Float32Array.of(1.0, 0.2, -0.5, 2.0, 0.0, -1.5, 1.2, 0.7);
  for (const temperature of [0.6, 1.0, 2.5]) {
    const sampler = new Sampler({ temperature, topK: 0, topP: 1, minP: 0, seed: 1234 + Math.round(temperature * 10) });
    const draws = 40000;
    const counts = new Array<number>(logits.length).fill(0);
    for (let i = 0; i < draws; i++) counts[sampler.sample(logits)]!++;
    const w = Array.from(logits, (l) => Math.exp(l / temperature));
    const z = w.reduce((a, b) => a + b, 0);
    let chi2 = 0;
    for (let i = 0; i < logits.length; i++) {
      const expected = (draws * w[i]!) / z;
      chi2 += (counts[i]! - expected) ** 2 / expected;
    }
    // 99.9th percentile of chi-square with 7 dof is 24.32.
    assert.ok(chi2 < 24.32, `T=${temperature}: chi2 ${chi2.toFixed(2)} counts ${counts.join(",")}`);
  }
});

test("top-p keeps the shortest prefix reaching p, renormalised after top-k", () => {
  const logits = logitsOf([0.4, 0.1, 0.3, 0.15, 0.05]); // ranked: 0 (0.4), 2 (0.3), 3 (0.15), 1 (0.1), 4 (0.05)
  const kept = (topK: number, topP: number, temperature = 1) =>
    new Sampler({ temperature, topK, topP, minP: 0, seed: 1 }).keptTokens(logits);
  assert.deepEqual(kept(0, 0.35), [0]);
  assert.deepEqual(kept(0, 0.65), [0, 2]);
  assert.deepEqual(kept(0, 0.75), [0, 2, 3]);
  assert.deepEqual(kept(0, 0.9), [0, 2, 3, 1]);
  assert.deepEqual(kept(0, 0.99), [0, 2, 3, 1, 4]);
  // top-p applies before temperature: T changes nothing.
  assert.deepEqual(kept(0, 0.75, 5), [0, 2, 3]);
  // After top-k = 2 the candidates are renormalised: 0.4/0.7 = 0.571 >= 0.5, so only token 0 stays.
  assert.deepEqual(kept(2, 0.5), [0]);
  assert.deepEqual(kept(0, 0.5), [0, 2]);
  // Sampling only ever returns kept tokens, and returns each of them.
  const s = new Sampler({ temperature: 1, topK: 0, topP: 0.75, minP: 0, seed: 9 });
  const seen = new Set<number>();
  for (let i = 0; i < 2000; i++) seen.add(s.sample(logits));
  assert.deepEqual([...seen].sort(), [0, 2, 3]);
});

test("min-p keeps tokens with probability >= p × the top probability", () => {
  const logits = logitsOf([0.5, 0.04, 0.2, 0.06, 0.2]);
  const kept = (minP: number, topK = 0) => new Sampler({ temperature: 1, topK, topP: 1, minP, seed: 1 }).keptTokens(logits).sort();
  assert.deepEqual(kept(0.1), [0, 2, 3, 4]); // 0.04 / 0.5 = 0.08 < 0.1
  assert.deepEqual(kept(0.13), [0, 2, 4]); // 0.06 / 0.5 = 0.12 < 0.13
  assert.deepEqual(kept(0.5), [0]); // 0.2 / 0.5 = 0.4
  assert.deepEqual(kept(0.05, 2), [0, 2]); // after top-k = 2 (ties: lower id first)
  const s = new Sampler({ temperature: 0.8, topK: 0, topP: 1, minP: 0.13, seed: 5 });
  const seen = new Set<number>();
  for (let i = 0; i < 3000; i++) seen.add(s.sample(logits));
  assert.deepEqual([...seen].sort(), [0, 2, 4]);
});

test("the filter chain matches an independent reference on random logits", () => {
  let checked = 0;
  for (let trial = 0; trial < 200; trial++) {
    const logits = lcgLogits(97, 1000 + trial, 1 + (trial % 5));
    const topK = [0, 1, 5, 40, 96, 97, 200][trial % 7]!;
    const topP = [1, 0.95, 0.8, 0.5, 0.1][trial % 5]!;
    const minP = [0, 0.05, 0.2, 0.6][trial % 4]!;
    const got = new Sampler({ temperature: 1, topK, topP, minP, seed: trial }).keptTokens(logits);
    const want = referenceKept(logits, topK, topP, minP);
    assert.deepEqual([...got].sort((a, b) => a - b), [...want].sort((a, b) => a - b), `trial ${trial} k=${topK} p=${topP} minP=${minP}`);
    checked++;
  }
  assert.equal(checked, 200);
});

test("options out of range are rejected by name", () => {
  assert.throws(() => new Sampler({ temperature: -1 }), SamplerOptionError);
  assert.throws(() => new Sampler({ topP: 1.5 }), /topP = 1.5.*0..1/);
  assert.throws(() => new Sampler({ minP: -0.1 }), /minP/);
  assert.throws(() => new Sampler({ seed: 2 ** 32 }), /seed/);
  assert.throws(() => new Sampler({ topK: 2.5 }), /topK/);
});

test("repetition penalties (llama.cpp's rules) change the logits of recent tokens only, over the last penaltyLastN", () => {
  // logits: token 0: 2.0, 1: -1.0, 2: 1.5, 3: 0.5
  const logits = Float32Array.from([2.0, -1.0, 1.5, 0.5]);
  const greedy = (opts: ConstructorParameters<typeof Sampler>[0], context: number[]) => new Sampler({ temperature: 0, ...opts }).sample(logits, context);
  assert.equal(greedy({}, [0, 0, 0]), 0, "penalties are off by default");
  // repeat 2: token 0 (positive) 2.0 / 2 = 1.0 < 1.5, so token 2 wins
  assert.equal(greedy({ repeatPenalty: 2 }, [0]), 2);
  // frequency 0.4 × 3 occurrences of token 0: 2.0 − 1.2 = 0.8 < 1.5
  assert.equal(greedy({ frequencyPenalty: 0.4 }, [0, 0, 0]), 2);
  // presence 0.4 once: 2.0 − 0.4 = 1.6 > 1.5, token 0 stays; with token 2 also present: 1.6 vs 1.1
  assert.equal(greedy({ presencePenalty: 0.4 }, [0, 0, 0]), 0);
  // only the last penaltyLastN tokens count: token 0 is outside the last 2
  assert.equal(greedy({ repeatPenalty: 2, penaltyLastN: 2 }, [0, 3, 3]), 0);
  assert.equal(greedy({ repeatPenalty: 2, penaltyLastN: -1 }, [0, 3, 3]), 2);
  assert.equal(greedy({ repeatPenalty: 2, penaltyLastN: 0 }, [0]), 0);
  // a negative logit is multiplied: −1.0 × 3 = −3.0 (token 1 never wins here; the original logits are not modified)
  new Sampler({ temperature: 0, repeatPenalty: 3 }).sample(logits, [1, 0]);
  assert.deepEqual(Array.from(logits), [2.0, -1.0, 1.5, 0.5]);
  // the kept set at temperature > 0 sees the penalized logits: top-k 1 keeps token 2 once token 0 is penalized
  assert.equal(new Sampler({ temperature: 1, topK: 1, repeatPenalty: 2, seed: 3 }).sample(logits, [0]), 2);
  assert.throws(() => new Sampler({ repeatPenalty: 0 }), SamplerOptionError);
  assert.throws(() => new Sampler({ presencePenalty: 3 }), SamplerOptionError);
  assert.throws(() => new Sampler({ penaltyLastN: -2 }), SamplerOptionError);
});
