/**
 * Log-probabilities of next-token distributions from logits rows, in float64.
 * A "logits row" is any row whose softmax is the distribution: raw logits, or log-probabilities (shift-invariant).
 */

export type Row = Float32Array | Float64Array;

/** Index of the largest value of row `row` (nVocab values from row * nVocab); the first one on ties, as llama.cpp picks. */
export function argmaxRow(logits: Row, row: number, nVocab: number): number {
  const base = row * nVocab;
  let best = 0;
  let bestValue = logits[base];
  for (let i = 1; i < nVocab; i++) {
    const v = logits[base + i];
    if (v > bestValue) {
      bestValue = v;
      best = i;
    }
  }
  return best;
}

/**
 * out[i] = logits[i] - max - log(sum_j exp(logits[j] - max)) for row `row` of `logits` (rows of nVocab values),
 * every step in float64. `out` holds nVocab values. Returns log(sum_j exp(logits[j])) (the log-partition).
 * Entries of -Infinity stay -Infinity (probability 0); a row with NaN or with no finite maximum is an error.
 */
export function logSoftmaxRow(logits: Row, row: number, nVocab: number, out: Float64Array): number {
  if (out.length < nVocab) throw new RangeError(`log-softmax output holds ${out.length} values, needs nVocab ${nVocab}`);
  const base = row * nVocab;
  if (base + nVocab > logits.length) {
    throw new RangeError(`row ${row} of ${nVocab} values is past the end of ${logits.length} logits`);
  }
  let max = -Infinity;
  for (let i = 0; i < nVocab; i++) {
    const v = logits[base + i];
    if (Number.isNaN(v)) throw new RangeError(`logits row ${row} holds NaN at token ${i}`);
    if (v > max) max = v;
  }
  if (!Number.isFinite(max)) throw new RangeError(`logits row ${row} has no finite maximum (max ${max})`);
  let sum = 0;
  for (let i = 0; i < nVocab; i++) sum += Math.exp(logits[base + i] - max);
  const logSum = Math.log(sum);
  for (let i = 0; i < nVocab; i++) out[i] = logits[base + i] - max - logSum;
  return max + logSum;
}

/** Log-probabilities of every row: (nRows, nVocab) in, (nRows, nVocab) out, computed in float64 and stored as float32. */
export function logSoftmaxRows(logits: Row, nRows: number, nVocab: number): Float32Array {
  const out = new Float32Array(nRows * nVocab); // (nRows, nVocab)
  const scratch = new Float64Array(nVocab); // (nVocab)
  for (let r = 0; r < nRows; r++) {
    logSoftmaxRow(logits, r, nVocab, scratch);
    out.set(scratch, r * nVocab);
  }
  return out;
}
