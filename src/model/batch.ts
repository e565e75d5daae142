/**
 * One forward pass over several sessions of a model (continuous batching): each session contributes tokens at its
 * next positions (a generating slot its one next token, a new request a chunk of its prompt); the weights are read
 * once for all of them, and each session's attention runs over its own cache. Every session gets the logits after its
 * last token, the same bits a pass of its tokens alone would give.
 */
import { copyFloats } from "../runtime/wasm.js";
import { forwardBatch } from "./forward.js";
import type { Model } from "./model.js";
import type { Session } from "./session.js";

export interface BatchStep {
  session: Session;
  /** At least one token. */
  tokens: readonly number[];
}

/** Evaluate every step's tokens in one pass; returns each step's next-token logits (copies, nVocab each). */
export function evalBatch(model: Model, steps: readonly BatchStep[]): Float32Array[] {
  return evalBatchInPlace(model, steps).map((view) => {
    const row = new Float32Array(view.length);
    copyFloats(row, view);
    return row;
  });
}

/**
 * evalBatch without the copies: each step's logits as a view of the model's logits rows, valid until its next pass
 * (a server's scheduler samples every slot's token at once; four 32000-value copies and their garbage were about 2% of
 * a TinyLlama step).
 */
export function evalBatchInPlace(model: Model, steps: readonly BatchStep[]): Float32Array[] {
  if (steps.length === 0) return [];
  const total = steps.reduce((n, s) => n + s.tokens.length, 0);
  if (total > model.batchSize) throw new RangeError(`a batch of ${total} tokens; one pass takes at most ${model.batchSize} (the model's batchSize)`);
  const sessions = new Set<Session>();
  for (const s of steps) {
    if (s.tokens.length === 0) throw new RangeError("evalBatch: a step without tokens");
    if (!s.session.belongsTo(model)) throw new RangeError("evalBatch: every session must belong to this model");
    if (sessions.has(s.session)) throw new RangeError("evalBatch: a session appears twice in one batch");
    sessions.add(s.session);
  }
  const parts = steps.map((s) => s.session.batchPart(s.tokens, "last"));
  forwardBatch({ config: model.config, weights: model.weights, shards: model.scratch }, parts);
  steps.forEach((s) => s.session.advance(s.tokens));
  const nVocab = model.config.nVocab;
  const first = model.scratch[0]!; // the output runs in shard 0
  const logits = first.rt.f32(first.state.logits, steps.length * nVocab); // (steps, nVocab)
  return steps.map((_, i) => logits.subarray(i * nVocab, (i + 1) * nVocab));
}
