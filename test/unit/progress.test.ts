/**
 * Plain progress lines (stderr not a terminal): the ETA comes from the rate since the first update, so a run resumed
 * far along (a perplexity checkpoint) does not count the earlier work as done in no time.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createProgress, formatDuration } from "../../src/report/progress.js";

/** The lines `fn` writes to stderr. */
function stderrOf(fn: () => void): string[] {
  const lines: string[] = [];
  const write = process.stderr.write;
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk).trimEnd());
    return true;
  }) as typeof process.stderr.write;
  try {
    fn();
  } finally {
    process.stderr.write = write;
  }
  return lines;
}

function sleepMs(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// node --test runs each file with stderr piped: the plain lines, never the terminal bar
test("a resumed run's ETA counts the steps since its first update, not from 0", () => {
  const lines = stderrOf(() => {
    const progress = createProgress(1000, true, 0);
    progress.update(600, "resumed at 600"); // the first update: no rate yet
    sleepMs(1100);
    progress.update(610, "10 steps later"); // ≥ 0.11 s a step: ≥ 43 s for the 390 left
    progress.update(1000, "done");
  });
  assert.equal(lines.length, 3);
  assert.match(lines[0]!, /^\[600\/1000\] resumed at 600 \(\d+\.\d s\)$/);
  const eta = /^\[610\/1000\] 10 steps later \(\d+\.\d s, eta (?:(\d+) s|(\d+) min (\d+) s)\)$/.exec(lines[1]!);
  assert.ok(eta, lines[1]);
  const seconds = eta[1] !== undefined ? Number(eta[1]) : Number(eta[2]) * 60 + Number(eta[3]);
  assert.ok(seconds >= 40, `eta ${seconds} s: from 0 it would be about 1 s (${lines[1]})`);
  assert.match(lines[2]!, /^\[1000\/1000\] done \(\d+\.\d s\)$/);
  assert.equal(formatDuration(75), "1 min 15 s");
});
