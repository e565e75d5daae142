/**
 * Pieces the synthetic-model conformance tests share (kquant-weights.test.ts, architectures.test.ts): a deterministic
 * prompt of ordinary token ids, and the mean KL divergence between two runs' distributions, computed here in float64
 * independently of src/eval.
 */

/** BOS (id 1) then pseudo-random ordinary tokens (ids 3 .. vocabSize − 1) from an LCG seeded with `seed`. */
export function syntheticPromptTokens(n: number, vocabSize: number, seed: number): number[] {
  const tokens = [1];
  let s = seed;
  while (tokens.length < n) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    tokens.push(3 + ((s >>> 8) % (vocabSize - 3)));
  }
  return tokens;
}

/** Mean and largest over rows of KL(p || q) for (nRows, nVocab) log-probabilities / logits (each row log-softmaxed in float64). */
export function meanKld(base: Float32Array, test: Float32Array, nRows: number, nVocab: number): { mean: number; max: number } {
  const logSoftmax = (x: Float32Array, r: number): Float64Array => {
    const row = new Float64Array(nVocab); // (nVocab)
    let max = -Infinity;
    for (let i = 0; i < nVocab; i++) max = Math.max(max, x[r * nVocab + i]);
    let sum = 0;
    for (let i = 0; i < nVocab; i++) sum += Math.exp(x[r * nVocab + i] - max);
    const lse = max + Math.log(sum);
    for (let i = 0; i < nVocab; i++) row[i] = x[r * nVocab + i] - lse;
    return row;
  };
  let total = 0;
  let worst = 0;
  for (let r = 0; r < nRows; r++) {
    const p = logSoftmax(base, r);
    const q = logSoftmax(test, r);
    let kl = 0;
    for (let i = 0; i < nVocab; i++) if (p[i] > -Infinity) kl += Math.exp(p[i]) * (p[i] - q[i]);
    total += kl;
    worst = Math.max(worst, kl);
  }
  return { mean: total / nRows, max: worst };
}
