/** Logit rows of a session: a batched prompt, then greedy tokens decoded one at a time (for bit-for-bit comparisons). */
import type { Session } from "../../src/model/session.js";

/** [logits of every prompt position (evalAll), then the logits of each of `steps` single-token evals]; the first decoded token is `first`, then each argmax. */
export function promptThenGreedy(session: Session, prompt: readonly number[], steps: number, first: number): Float32Array[] {
  const rows = [session.evalAll(prompt)];
  let next = first;
  for (let i = 0; i < steps; i++) {
    const logits = session.eval([next]);
    rows.push(logits);
    next = logits.indexOf(Math.max(...logits));
  }
  return rows;
}
