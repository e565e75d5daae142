import { test } from "node:test";
import assert from "node:assert/strict";
import { generate, ContextOverflowError, type GenerationSession } from "../../src/model/generate.js";
import { Sampler } from "../../src/model/sampler.js";

/** A session whose logits after token t put the maximum on (t + 1) % nVocab; it records every eval call. */
class CountingSession implements GenerationSession {
  position = 0;
  readonly calls: number[][] = [];
  constructor(
    readonly contextSize: number,
    private readonly nVocab = 16,
  ) {}
  eval(tokens: number[]): Float32Array {
    assert.ok(this.position + tokens.length <= this.contextSize, "never evaluates past the context");
    this.calls.push([...tokens]);
    this.position += tokens.length;
    const logits = new Float32Array(this.nVocab); // (nVocab)
    logits[(tokens[tokens.length - 1]! + 1) % this.nVocab] = 1;
    return logits;
  }
}

const greedy = () => new Sampler({ temperature: 0 });

test("generates maxTokens, feeding each token back once", () => {
  const s = new CountingSession(100);
  const seen: number[] = [];
  const r = generate(s, [1, 2, 3], { maxTokens: 4, sampler: greedy(), onToken: (id) => seen.push(id) });
  assert.deepEqual(r.tokens, [4, 5, 6, 7]);
  assert.deepEqual(seen, [4, 5, 6, 7]);
  assert.equal(r.stopReason, "max_tokens");
  assert.deepEqual(s.calls, [[1, 2, 3], [4], [5], [6]]); // the last token is not evaluated
  assert.equal(r.genEvals, 3);
  assert.equal(r.promptTokens, 3);
});

test("stops at an end-of-generation token without returning it", () => {
  const s = new CountingSession(100);
  const r = generate(s, [1], { maxTokens: 50, sampler: greedy(), isEog: (id) => id === 5 });
  assert.deepEqual(r.tokens, [2, 3, 4]);
  assert.equal(r.stopReason, "eog");
});

test("stops when the context is full, and rejects a prompt that does not fit", () => {
  const s = new CountingSession(6);
  const r = generate(s, [0, 1], { maxTokens: Infinity, sampler: greedy() });
  assert.equal(r.stopReason, "context_full");
  assert.equal(s.position, 6);
  assert.deepEqual(r.tokens, [2, 3, 4, 5, 6]);
  assert.throws(() => generate(new CountingSession(2), [1, 2, 3], { maxTokens: 1, sampler: greedy() }), ContextOverflowError);
  assert.throws(() => generate(new CountingSession(2), [], { maxTokens: 1, sampler: greedy() }), /no tokens/);
  const zero = generate(new CountingSession(4), [1], { maxTokens: 0, sampler: greedy() });
  assert.deepEqual(zero.tokens, []);
});
