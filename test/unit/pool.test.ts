/**
 * ThreadPool (src/runtime/pool.ts): the split covers every item exactly once, real runs across worker threads give
 * the single-thread kernel's bits, a kernel trap in a worker throws in the caller (and the pool keeps working),
 * and disposal (explicit, or by garbage collection) leaves no live worker.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { setTimeout as sleep } from "node:timers/promises";
import { BIG_CHUNKS_SHARE, ThreadPool, ThreadPoolError, chunkBound, splitBound, type ParallelTask } from "../../src/runtime/pool.js";
import { WasmRuntime } from "../../src/runtime/wasm.js";

test("splitBound partitions [0, count) into grain-aligned ranges, every item exactly once", () => {
  for (let nThreads = 1; nThreads <= 9; nThreads++) {
    for (const grain of [1, 2, 3, 16, 32, 100]) {
      for (const count of [0, 1, 2, 5, 15, 16, 17, 31, 33, 64, 99, 255, 256, 1000, 5632, 32000]) {
        const seen = new Uint8Array(count);
        let covered = 0;
        for (let t = 0; t < nThreads; t++) {
          const start = splitBound(count, grain, t, nThreads);
          const end = splitBound(count, grain, t + 1, nThreads);
          assert.ok(start <= end, `count ${count} grain ${grain} T ${nThreads}: thread ${t} range [${start}, ${end})`);
          if (start < end) assert.equal(start % grain, 0, `thread ${t} starts off-grain at ${start}`);
          if (end < count) assert.equal(end % grain, 0, `thread ${t} ends off-grain at ${end}`);
          for (let i = start; i < end; i++) seen[i]++;
          covered += end - start;
        }
        assert.equal(splitBound(count, grain, 0, nThreads), 0);
        assert.equal(splitBound(count, grain, nThreads, nThreads), count);
        assert.equal(covered, count);
        assert.ok(seen.every((n) => n === 1), `count ${count} grain ${grain} T ${nThreads}: an item not computed exactly once`);
        // Balanced to within one grain (+ the ragged last grain).
        const sizes = Array.from({ length: nThreads }, (_, t) => splitBound(count, grain, t + 1, nThreads) - splitBound(count, grain, t, nThreads));
        assert.ok(Math.max(...sizes) - Math.min(...sizes) <= grain, `unbalanced split ${sizes} for count ${count} grain ${grain}`);
      }
    }
  }
});

test("chunkBound: big chunks first, then small ones; grain-aligned, every item exactly once", () => {
  for (const bigChunks of [0, 1, 2, 3, 4]) {
    for (const nChunks of [1, 2, 4, 8, 12, 16]) {
      for (const grain of [1, 4, 32]) {
        for (const count of [0, 1, 7, 16, 31, 32, 256, 2048, 5632, 32000]) {
          const seen = new Uint8Array(count);
          const sizes: number[] = [];
          for (let c = 0; c < nChunks; c++) {
            const start = chunkBound(count, grain, c, nChunks, bigChunks);
            const end = chunkBound(count, grain, c + 1, nChunks, bigChunks);
            const at = `count ${count} grain ${grain} chunks ${nChunks} big ${bigChunks}: chunk ${c} [${start}, ${end})`;
            assert.ok(start <= end, at);
            if (start < end) assert.equal(start % grain, 0, `${at} starts off-grain`);
            if (end < count) assert.equal(end % grain, 0, `${at} ends off-grain`);
            for (let i = start; i < end; i++) seen[i]++;
            sizes.push(end - start);
          }
          assert.equal(chunkBound(count, grain, 0, nChunks, bigChunks), 0);
          assert.equal(chunkBound(count, grain, nChunks, nChunks, bigChunks), count);
          assert.ok(seen.every((n) => n === 1), `count ${count} grain ${grain} chunks ${nChunks} big ${bigChunks}: an item not computed exactly once`);
          if (bigChunks > 0 && nChunks >= 2 * bigChunks && count >= 64 * grain) {
            // (the pool cuts a task this way: one big chunk per thread, at least as many small ones)
            // the big chunks hold BIG_CHUNKS_SHARE of the grains (to within one grain each), every small one is smaller
            const big = sizes.slice(0, bigChunks).reduce((a, b) => a + b, 0);
            assert.ok(Math.abs(big - count * BIG_CHUNKS_SHARE) <= (bigChunks + 1) * grain, `big chunks hold ${big} of ${count}`);
            assert.ok(Math.max(...sizes.slice(bigChunks)) < Math.min(...sizes.slice(0, bigChunks)), `sizes ${sizes}`);
          }
        }
      }
    }
  }
});

/** W (rows, cols) and x (cols) f32 with deterministic values; one output buffer per thread, pre-filled with NaN. */
function matvecSetup(rt: WasmRuntime, rows: number, cols: number, nThreads: number) {
  const w = rt.alloc(rows * cols * 4);
  const x = rt.alloc(cols * 4);
  const outs = rt.alloc(nThreads * rows * 4); // (nThreads, rows): thread t writes only its own rows of its own copy
  const wv = rt.f32(w, rows * cols);
  for (let i = 0; i < wv.length; i++) wv[i] = Math.sin(i * 0.37) * 0.5;
  const xv = rt.f32(x, cols);
  for (let i = 0; i < cols; i++) xv[i] = Math.cos(i * 0.11);
  rt.f32(outs, nThreads * rows).fill(NaN);
  const expected = rt.alloc(rows * 4);
  rt.k.matvec_f32(w, x, expected, 0, rows, cols); // the same kernel on one thread: the bits to reproduce
  return { w, x, outs, expected };
}

test("real runs on 1-4 threads: every row written by exactly one thread, bit-identical to one thread", () => {
  let workerRows = 0; // rows computed by a worker thread (the test is void if workers never ran)
  const rt = new WasmRuntime();
  for (const nThreads of [1, 2, 3, 4]) {
    const pool = new ThreadPool(rt.memory, nThreads);
    try {
      // The last shape repeats (up to 100 times) until a worker took part: chunks go to whoever claims them first.
      const shapes = [[1, 1], [7, 1], [64, 16], [100, 16], [333, 3], [1000, 32], ...Array.from({ length: 100 }, () => [4096, 16])];
      const workerRowsBefore = workerRows;
      for (const [rows, grain] of shapes) {
        if (rows === 4096 && (nThreads === 1 || workerRows > workerRowsBefore)) break;
        const cols = 40;
        const { w, x, outs, expected } = matvecSetup(rt, rows, cols, nThreads);
        const task: ParallelTask = {
          kernel: "matvec_f32",
          args: [w, x, 0, 0, 0, cols],
          count: rows,
          startArg: 3,
          endArg: 4,
          grain,
          threadArg: { index: 2, base: outs, stride: rows * 4 },
        };
        pool.run([task]);
        const got = rt.f32(outs, nThreads * rows);
        const want = rt.f32(expected, rows);
        for (let r = 0; r < rows; r++) {
          const writers = [];
          for (let t = 0; t < nThreads; t++) if (!Number.isNaN(got[t * rows + r])) writers.push(t);
          assert.equal(writers.length, 1, `T ${nThreads} rows ${rows} grain ${grain}: row ${r} written by threads [${writers}]`);
          assert.equal(got[writers[0] * rows + r], want[r], `row ${r} differs from the single-thread kernel`);
          if (writers[0] > 0) workerRows++;
        }
      }
    } finally {
      pool.dispose();
    }
  }
  assert.ok(workerRows > 0, "no row was computed by a worker");
});

/** A pool of `nThreads` threads over a fresh runtime, for `body`; disposed afterwards. */
function withPool(nThreads: number, body: (rt: WasmRuntime, pool: ThreadPool) => void): void {
  const rt = new WasmRuntime();
  const pool = new ThreadPool(rt.memory, nThreads);
  try {
    body(rt, pool);
  } finally {
    pool.dispose();
  }
}

/** One matvec_f32 task per row count (rows × cols) in a single run: each output equals the single-thread bits. */
function assertMatvecBatch(rt: WasmRuntime, pool: ThreadPool, rowCounts: readonly number[], cols: number, grain?: number): void {
  const setups = rowCounts.map((rows) => ({ rows, ...matvecSetup(rt, rows, cols, 1) }));
  pool.run(setups.map((s) => ({ kernel: "matvec_f32", args: [s.w, s.x, s.outs, 0, 0, cols], count: s.rows, startArg: 3, endArg: 4, ...(grain === undefined ? {} : { grain }) })));
  for (const s of setups) assert.deepEqual(rt.f32(s.outs, s.rows), rt.f32(s.expected, s.rows));
}

test("several tasks in one run all complete (q, k, v style batch)", () => {
  withPool(3, (rt, pool) => assertMatvecBatch(rt, pool, [256, 32, 32, 1, 45], 24, 16));
});

test("more tasks than fit one control block run in several syncs", () => {
  withPool(2, (rt, pool) => assertMatvecBatch(rt, pool, Array.from({ length: 70 }, (_, i) => 3 + i), 8));
});

test("runTogether holds back the runs asked for inside it and runs them as one, after it returns", () => {
  withPool(2, (rt, pool) => {
    const setups = [64, 40, 8].map((rows) => ({ rows, ...matvecSetup(rt, rows, 16, 1) }));
    const task = (s: (typeof setups)[number]): ParallelTask => ({ kernel: "matvec_f32", args: [s.w, s.x, s.outs, 0, 0, 16], count: s.rows, startArg: 3, endArg: 4 });
    for (const s of setups) rt.f32(s.outs, s.rows).fill(NaN);
    const runsBefore: boolean[] = [];
    pool.runTogether(() => {
      pool.run([task(setups[0])]);
      pool.runTogether(() => pool.run([task(setups[1])])); // a nested call joins the outer one
      pool.run([task(setups[2])]);
      runsBefore.push(...setups.map((s) => rt.f32(s.outs, s.rows).some((v) => !Number.isNaN(v))));
    });
    assert.deepEqual(runsBefore, [false, false, false], "a task ran before runTogether's function returned");
    for (const s of setups) assert.deepEqual(rt.f32(s.outs, s.rows), rt.f32(s.expected, s.rows));
    pool.runTogether(() => {}); // nothing asked: nothing runs
    pool.run([task(setups[0])]); // and runs outside it are not held back
    assert.deepEqual(rt.f32(setups[0].outs, setups[0].rows), rt.f32(setups[0].expected, setups[0].rows));
  });
});

test("a kernel trap in a worker throws in the caller; the pool stays usable", () => {
  withPool(2, (rt, pool) => {
    const rows = 4096;
    const cols = 64;
    const { w, x, outs, expected } = matvecSetup(rt, rows, cols, 1);
    // Per-thread W: the calling thread (0) reads the real W, worker threads read past the end of memory and trap.
    // Chunks go to whichever thread claims them, so repeat until a worker took one (the caller alone succeeds).
    const trap: ParallelTask = {
      kernel: "matvec_f32", args: [0, x, outs, 0, 0, cols], count: rows, startArg: 3, endArg: 4, grain: 16,
      threadArg: { index: 0, base: w, stride: rt.memory.buffer.byteLength },
    };
    let workerTraps = 0;
    for (let attempt = 0; attempt < 200 && workerTraps < 3; attempt++) {
      try {
        pool.run([trap]);
      } catch (e) {
        assert.ok(e instanceof ThreadPoolError, `expected ThreadPoolError, got ${String(e)}`);
        assert.match(e.message, /^worker 0: RuntimeError: .*out of bounds/);
        workerTraps++;
      }
    }
    assert.ok(workerTraps > 0, "the worker never claimed a chunk in 200 runs");
    // A trap in the calling thread's own chunks surfaces too (after every chunk finished).
    const bad: ParallelTask = { kernel: "matvec_f32", args: [rt.memory.buffer.byteLength, x, outs, 0, 0, cols], count: rows, startArg: 3, endArg: 4 };
    assert.throws(() => pool.run([bad]), /out of bounds/);
    pool.run([{ kernel: "matvec_f32", args: [w, x, outs, 0, 0, cols], count: rows, startArg: 3, endArg: 4 }]);
    assert.deepEqual(rt.f32(outs, rows), rt.f32(expected, rows));
  });
});

test("bad tasks are rejected with their name and the allowed values", () => {
  withPool(2, (rt, pool) => {
    const base = { args: [0, 0, 0, 0, 0, 0], count: 4, startArg: 3, endArg: 4 };
    assert.throws(() => pool.run([{ ...base, kernel: "no_such_kernel" }]), /unknown kernel 'no_such_kernel'/);
    assert.throws(() => pool.run([{ ...base, kernel: "matvec_f32", startArg: 9 }]), /startArg 9 is not an index into its 6 arguments/);
    assert.throws(() => pool.run([{ ...base, kernel: "matvec_f32", grain: 0 }]), /grain must be a positive integer, got 0/);
    assert.throws(() => new ThreadPool(rt.memory, 0), /threads must be an integer in \[1, \d+\], got 0/);
    assert.throws(() => new ThreadPool(new WebAssembly.Memory({ initial: 1 }), 2), /shared WebAssembly.Memory/);
  });
});

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, sleep(ms, undefined, { ref: false }).then(() => assert.fail(`${what} not within ${ms} ms`))]);
}

test("dispose stops every worker; a one-thread pool has none", async () => {
  const rt = new WasmRuntime();
  const pool = new ThreadPool(rt.memory, 3);
  pool.run([{ kernel: "matvec_f32", args: [0, 0, 0, 0, 0, 0], count: 0, startArg: 3, endArg: 4 }]);
  pool.dispose();
  await within(pool.exited, 10000, "worker exit after dispose");
  assert.throws(() => pool.run([]), /disposed/);
  const single = new ThreadPool(rt.memory, 1);
  await within(single.exited, 1000, "a one-thread pool's exited promise");
  const { w, x, outs, expected } = matvecSetup(rt, 10, 8, 1);
  single.run([{ kernel: "matvec_f32", args: [w, x, outs, 0, 0, 8], count: 10, startArg: 3, endArg: 4 }]);
  assert.deepEqual(rt.f32(outs, 10), rt.f32(expected, 10));
  single.dispose();
});

test("a pool dropped without dispose has its workers stopped when garbage collected", async () => {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const rt = new WasmRuntime();
  const exited = ((): Promise<void> => {
    const pool = new ThreadPool(rt.memory, 2);
    pool.run([{ kernel: "matvec_f32", args: [0, 0, 0, 0, 0, 0], count: 0, startArg: 3, endArg: 4 }]);
    return pool.exited; // holds no reference to the pool
  })();
  let done = false;
  void exited.then(() => (done = true));
  for (let i = 0; i < 200 && !done; i++) {
    gc();
    await sleep(20);
  }
  assert.ok(done, "workers of an unreachable pool still alive after 200 garbage collections");
});
