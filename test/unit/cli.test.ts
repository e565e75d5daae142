/**
 * The built CLI, spawned as a user would run it: exit codes, one-line error messages, --help, and the JSON contract
 * of `tokenize` and `run` (DESIGN.md section 4). Build first: npx tsc -p tsconfig.json && npm run build:wasm.
 */
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { sharedPaths, sharedSkip } from "../helpers/shared.js";
import { runCli, type CliRun } from "../helpers/cli.js";

let dir = "";

const kvsplit = (...args: string[]): CliRun => runCli(dir, args);

/** An expected failure: the exit code, one line on stderr matching `message`, no stack trace, nothing on stdout. */
function assertFails(r: CliRun, code: number, message: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}`);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at .*:\d+:\d+/, "no stack trace");
  assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  assert.equal(r.stdout, "");
}

/** The only thing on stdout is one JSON object. */
function parseJsonOut(r: CliRun): Record<string, unknown> {
  assert.equal(r.code, 0, `exit code; stderr: ${r.stderr}`);
  const lines = r.stdout.trim().split("\n");
  assert.equal(lines.length, 1, `one line of JSON on stdout, got: ${r.stdout}`);
  const value = JSON.parse(lines[0]!) as unknown;
  assert.ok(value !== null && typeof value === "object" && !Array.isArray(value));
  return value as Record<string, unknown>;
}

before(() => {
  dir = mkdtempSync(path.join(tmpdir(), "kvsplit-cli-"));
  writeFileSync(path.join(dir, "not-a-model.gguf"), "this is plain text, not a GGUF file\n");
  writeFileSync(path.join(dir, "prompt.txt"), "Once upon a time");
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("--help lists the commands and exits 0", () => {
  const r = kvsplit("--help");
  assert.equal(r.code, 0);
  for (const cmd of ["run", "tokenize", "synth"]) assert.match(r.stdout, new RegExp(`^\\s+${cmd}\\b`, "m"));
  const run = kvsplit("run", "--help");
  assert.equal(run.code, 0);
  for (const flag of ["--model", "--prompt", "--n-predict", "--ctx-size", "--kv", "--cache-type-k", "--no-kv-rotation", "--temp", "--top-k", "--top-p", "--min-p", "--seed", "--json"]) {
    assert.ok(run.stdout.includes(flag), `run --help mentions ${flag}`);
  }
  assert.equal(kvsplit("help", "tokenize").code, 0);
  assert.match(kvsplit("--version").stdout, /^\d+\.\d+\.\d+\n$/);
});

test("no command, an unknown command or an unknown flag exits 2", () => {
  assert.equal(kvsplit().code, 2);
  assert.equal(kvsplit("frobnicate").code, 2);
  const r = kvsplit("run", "-m", "x.gguf", "-p", "hi", "--bogus");
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--bogus'/);
});

test("a missing model file exits 2 naming the path", () => {
  assertFails(kvsplit("run", "-m", "nowhere/missing.gguf", "-p", "hi"), 2, /nowhere\/missing\.gguf: model file not found/);
  assertFails(kvsplit("tokenize", "-m", "missing.gguf", "-p", "hi"), 2, /missing\.gguf: model file not found/);
  assertFails(kvsplit("run", "-m", ".", "-p", "hi"), 2, /not a regular file/);
});

test("a file that is not GGUF exits 2 with the reader's message (naming the offset)", () => {
  for (const cmd of ["run", "tokenize"]) {
    assertFails(kvsplit(cmd, "-m", "not-a-model.gguf", "-p", "hi"), 2, /not-a-model\.gguf.*not_gguf at byte 0/);
  }
});

test("a truncated GGUF exits 2 with the reader's message", { skip: sharedSkip(sharedPaths.stories260K) }, () => {
  const cut = path.join(dir, "truncated.gguf");
  writeFileSync(cut, readFileSync(sharedPaths.stories260K).subarray(0, 777));
  assertFails(kvsplit("run", "-m", cut, "-p", "hi"), 2, /truncated\.gguf: truncated at byte \d+/);
});

test("an unknown --kv config exits 2 listing the allowed configs", () => {
  const r = kvsplit("run", "-m", "missing.gguf", "-p", "hi", "--kv", "K9V4");
  assertFails(r, 2, /unknown KV cache config 'K9V4'/);
  assert.match(r.stderr, /allowed: F16, F32, KxVy/);
  assert.match(r.stderr, /q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl/);
  assertFails(kvsplit("run", "-m", "missing.gguf", "-p", "hi", "-ctk", "q3_k"), 2, /'q3_k' is not a KV cache format/);
});

test("--kv together with -ctk/-ctv exits 2", () => {
  assertFails(kvsplit("run", "-m", "missing.gguf", "-p", "hi", "--kv", "K8V4", "-ctk", "q8_0"), 2, /'--kv K8V4' conflicts with '-ctk q8_0'/);
  assertFails(kvsplit("run", "-m", "missing.gguf", "-p", "hi", "--kv", "F16", "-ctv=q4_0"), 2, /conflicts with '-ctv q4_0'/);
});

test("-p and -f together, or neither, exits 2; a missing -f file exits 2 naming it", () => {
  for (const cmd of ["run", "tokenize"]) {
    assertFails(kvsplit(cmd, "-m", "missing.gguf", "-p", "hi", "-f", "prompt.txt"), 2, /-p TEXT or with -f FILE, not both/);
    assertFails(kvsplit(cmd, "-m", "missing.gguf"), 2, /no input text: give -p TEXT or -f FILE/);
    assertFails(kvsplit(cmd, "-m", "missing.gguf", "-f", "nope.txt"), 2, /nope\.txt: text file \(-f\) not found/);
  }
  assertFails(kvsplit("run", "-p", "hi"), 2, /required option '-m, --model <path>' not specified/);
});

test("bad numbers exit 2 naming the flag and the allowed range", () => {
  assertFails(kvsplit("run", "-m", "m.gguf", "-p", "hi", "-n", "many"), 2, /'-n, --n-predict <n>' argument 'many' is invalid.*integer >= -1/);
  assertFails(kvsplit("run", "-m", "m.gguf", "-p", "hi", "-c", "0"), 2, /--ctx-size.*integer >= 1/);
  assertFails(kvsplit("run", "-m", "m.gguf", "-p", "hi", "--top-p", "1.5"), 2, /--top-p.*number from 0 to 1/);
  assertFails(kvsplit("run", "-m", "m.gguf", "-p", "hi", "--temp", "-1"), 2, /--temp.*number >= 0/);
  assertFails(kvsplit("run", "-m", "m.gguf", "-p", "hi", "-b", "0"), 2, /--batch-size.*integer from 1 to 4096/);
  assertFails(kvsplit("perplexity", "-m", "m.gguf", "-p", "hi", "--batch-size", "5000"), 2, /--batch-size.*integer from 1 to 4096/);
});

test("synth rejects an unknown preset or type, listing the choices", () => {
  assertFails(kvsplit("synth", "--preset", "huge", "-o", "x.gguf"), 2, /argument 'huge' is invalid.*tiny, tinyllama-1\.1b, llama-8b/);
  assertFails(kvsplit("synth", "--preset", "tiny", "--type", "q2_k", "-o", "x.gguf"), 2, /f32, f16, q8_0/);
  assertFails(kvsplit("synth", "--preset", "tiny"), 2, /required option '-o, --output <file>'/);
});

test("synth writes a model that tokenize and run accept", () => {
  const tiny = path.join(dir, "tiny.gguf");
  const synthRun = kvsplit("synth", "--preset", "tiny", "--seed", "3", "-t", "2", "-o", tiny, "--json");
  const made = parseJsonOut(synthRun);
  assert.equal(made.path, tiny);
  // Not a terminal: plain progress lines on stderr (a bar on a terminal), then the summary.
  assert.match(synthRun.stderr, /^synth tiny f32: writing [\d.]+ [KM]iB to .*tiny\.gguf$/m);
  assert.match(synthRun.stderr, /^wrote .*tiny\.gguf: preset tiny, f32 weights, seed 3/m);
  assert.equal(made.bytes, readFileSync(tiny).length);
  assertFails(kvsplit("synth", "--preset", "tiny", "-o", path.join(dir, "no", "such", "dir.gguf")), 2, /does not exist/);

  const tokenized = parseJsonOut(kvsplit("tokenize", "-m", tiny, "-p", "Once upon a time", "--json"));
  const ids = tokenized.tokens as number[];
  assert.ok(ids.length >= 2 && ids[0] === 1, `BOS first: ${JSON.stringify(ids)}`);

  // The tiny preset: 2 layers, 1 kv head of head_dim 64 (kvDim 64). KV bytes = layers × ctx × (K row + V row).
  const kvRow = { f16: 64 * 2, f32: 64 * 4, q8_0: 2 * 34, q4_0: 2 * 18 } as const;
  for (const [config, k, v] of [["F16", "f16", "f16"], ["K8V4", "q8_0", "q4_0"], ["K4V8", "q4_0", "q8_0"]] as const) {
    const out = parseJsonOut(kvsplit("run", "-m", tiny, "-p", "Once upon a time", "-n", "6", "-c", "48", "--kv", config, "--json"));
    assert.deepEqual(out.kv, { k, v, bytes: 2 * 48 * (kvRow[k] + kvRow[v]) }, config);
    const tokens = out.tokens as number[];
    assert.ok(tokens.length <= 6 && tokens.every((t) => Number.isInteger(t) && t >= 0 && t < 512), JSON.stringify(tokens));
    if (out.stop_reason === "max_tokens") assert.equal(tokens.length, 6);
  }
  // -ctk/-ctv choose the same pair as --kv.
  const viaTypes = parseJsonOut(kvsplit("run", "-m", tiny, "-p", "Once", "-n", "4", "-c", "48", "-ctk", "q8_0", "-ctv", "q4_0", "--json"));
  const viaKv = parseJsonOut(kvsplit("run", "-m", tiny, "-p", "Once", "-n", "4", "-c", "48", "--kv", "K8V4", "--json"));
  assert.deepEqual(viaTypes.tokens, viaKv.tokens);
  assert.deepEqual(viaTypes.kv, viaKv.kv);
  // -b: passes of 3 tokens give the same greedy text as the default batches
  const smallBatches = parseJsonOut(kvsplit("run", "-m", tiny, "-p", "Once upon a time there was", "-n", "4", "-c", "48", "--kv", "K8V4", "-b", "3", "--json"));
  const defaultBatches = parseJsonOut(kvsplit("run", "-m", tiny, "-p", "Once upon a time there was", "-n", "4", "-c", "48", "--kv", "K8V4", "--json"));
  assert.deepEqual(smallBatches.tokens, defaultBatches.tokens);

  const cut = path.join(dir, "tiny-cut.gguf");
  writeFileSync(cut, readFileSync(tiny).subarray(0, 300));
  assertFails(kvsplit("tokenize", "-m", cut, "-p", "hi"), 2, /tiny-cut\.gguf: truncated at byte \d+/);
});

const stories = sharedSkip(sharedPaths.stories260K);

test("tokenize prints ids like llama-tokenize, --ids as a list, --json as {tokens}", { skip: stories }, () => {
  const m = sharedPaths.stories260K;
  // llama.cpp's greedy continuation from BOS starts " Once upon a time" = 403 407 261 378 (shared/models/README.md).
  const json = parseJsonOut(kvsplit("tokenize", "-m", m, "-p", "Once upon a time", "--json"));
  assert.deepEqual(json, { tokens: [1, 403, 407, 261, 378] });
  const fromFile = parseJsonOut(kvsplit("tokenize", "-m", m, "-f", "prompt.txt", "--json"));
  assert.deepEqual(fromFile, json);
  const ids = kvsplit("tokenize", "-m", m, "-p", "Once upon a time", "--ids", "--no-bos");
  assert.equal(ids.code, 0);
  assert.equal(ids.stdout, "[403, 407, 261, 378]\n");
  const plain = kvsplit("tokenize", "-m", m, "-p", "Once upon");
  assert.equal(plain.code, 0);
  assert.equal(plain.stdout, "     1 -> '<s>'\n   403 -> ' Once'\n   407 -> ' upon'\n");
});

test("run --json on stories260K: greedy tokens match llama.cpp's, exact KV bytes", { skip: stories }, () => {
  const m = sharedPaths.stories260K;
  const out = parseJsonOut(kvsplit("run", "-m", m, "-p", "", "-n", "20", "--temp", "0", "-c", "64", "--json"));
  const tokens = out.tokens as number[];
  assert.equal(tokens.length, 20);
  assert.deepEqual(tokens.slice(0, 5), [403, 407, 261, 378, 432]);
  assert.match(out.text as string, /^ Once upon a time, there was a little girl named Lily/);
  // 5 layers × 64 positions × kvDim 32 (4 kv heads × head_dim 8) × (K + V) × 2 bytes (f16).
  assert.deepEqual(out.kv, { k: "f16", v: "f16", bytes: 5 * 64 * 32 * 2 * 2 });
  const timings = out.timings as Record<string, number>;
  assert.ok(timings.prompt_tps > 0 && timings.gen_tps > 0, JSON.stringify(timings));
  const f32 = parseJsonOut(kvsplit("run", "-m", m, "-p", "", "-n", "3", "-c", "64", "--kv", "F32", "--json"));
  assert.deepEqual(f32.kv, { k: "f32", v: "f32", bytes: 5 * 64 * 32 * 4 * 2 });
  // The streamed text (stdout without --json) is the JSON text; the summary is on stderr.
  const streamed = kvsplit("run", "-m", m, "-p", "", "-n", "20", "-c", "64");
  assert.equal(streamed.code, 0, streamed.stderr);
  assert.equal(streamed.stdout, (out.text as string) + "\n");
  assert.match(streamed.stderr, /kv: k=f16 v=f16 \(F16\)/);
  assert.match(streamed.stderr, /prompt: 1 tokens, [\d.]+ t\/s/);
  assert.match(streamed.stderr, /generation: 20 tokens, [\d.]+ t\/s/);
});

test("run stops when the context is full, and sampling is reproducible for a seed", { skip: stories }, () => {
  const m = sharedPaths.stories260K;
  const full = parseJsonOut(kvsplit("run", "-m", m, "-p", "", "-n", "100", "-c", "8", "--json"));
  assert.equal(full.stop_reason, "context_full");
  // One prompt token + 7 evaluated generated tokens fill 8 positions; the 8th generated token is sampled from the last.
  assert.equal((full.tokens as number[]).length, 8);
  const sample = (seed: string) =>
    parseJsonOut(kvsplit("run", "-m", m, "-p", "Once", "-n", "24", "-c", "64", "--temp", "1", "--top-k", "0", "--top-p", "1", "--min-p", "0", "--seed", seed, "--json"));
  const a = sample("7");
  assert.deepEqual(a.tokens, sample("7").tokens);
  assert.notDeepEqual(a.tokens, sample("8").tokens);
  assert.equal(a.seed, 7);
});
