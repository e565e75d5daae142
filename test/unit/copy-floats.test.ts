/**
 * copyFloats: floats read out of a shared WebAssembly memory (the logits of a pass) into an ordinary array, as bytes,
 * land exactly where dst.set(src, at) puts them, every bit pattern included (NaN payloads, −0, subnormals).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFloats } from "../../src/runtime/wasm.js";

test("copyFloats equals Float32Array.set, at any offset, bit for bit", () => {
  const memory = new WebAssembly.Memory({ initial: 2, maximum: 16, shared: true });
  const bits = new Uint32Array(memory.buffer, 4096, 1000); // (1000) arbitrary patterns, a few special ones first
  bits.set([0x7fc00001, 0xffc12345, 0x80000000, 0x00000001, 0x7f800000, 0xff800000]);
  for (let i = 6; i < bits.length; i++) bits[i] = (Math.imul(i, 2654435761) ^ (i << 7)) >>> 0;
  const src = new Float32Array(memory.buffer, 4096 + 8, 990); // (990) a view that starts inside the memory
  for (const at of [0, 1, 37]) {
    const got = new Float32Array(1100).fill(0.5);
    copyFloats(got, src, at);
    const want = new Uint32Array(1100);
    want.set(new Uint32Array(new Float32Array(1100).fill(0.5).buffer));
    want.set(new Uint32Array(memory.buffer, 4096 + 8, 990), at);
    assert.deepEqual(new Uint32Array(got.buffer), want, `at ${at}`);
  }
});
