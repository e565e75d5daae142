/**
 * `kvsplit serve` as a process: it announces its address, serves the official client, answers a request beyond its
 * queue with 503 and Retry-After, and on SIGTERM ends the stream in flight cleanly ([DONE]) and exits 0 within 5 s.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import OpenAI from "openai";
import { CLI } from "../helpers/cli.js";
import { useModelDir } from "../helpers/model-dir.js";

const md = useModelDir("cli-serve", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 8192 }, 61);

test("serve: queue limit gives 503 + Retry-After; SIGTERM ends the stream in flight with [DONE] and exits 0 within 5 s", async () => {
  const child = spawn(process.execPath, [CLI, "serve", "-m", md.modelPath, "--port", "0", "-c", "8192", "--parallel", "1", "--queue", "0", "--kv", "K8V4", "-t", "1"], { stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; at: number }>((resolve) => child.on("exit", (code) => resolve({ code, at: performance.now() })));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 60_000);
      child.stderr.on("data", () => {
        const m = /serve: (http:\/\/[^\s]+)/.exec(stderr);
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
    });
    assert.match(stderr, /1 slot of 8192 tokens, kv K8V4/);
    const client = new OpenAI({ baseURL: `${url}/v1`, apiKey: "none", maxRetries: 0 });
    // a long answer occupies the only slot
    const raw = await fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Once upon a time", max_tokens: 8000, stream: true }) });
    const reader = raw.body!.getReader();
    await reader.read(); // the first chunk: generation has started
    // no slot and no room in the queue: 503 with Retry-After
    const busy = await fetch(`${url}/v1/completions`, { method: "POST", body: JSON.stringify({ prompt: "Hello", max_tokens: 2 }) });
    assert.equal(busy.status, 503);
    assert.equal(busy.headers.get("retry-after"), "1");
    assert.match(((await busy.json()) as { error: { message: string } }).error.message, /busy/);
    await assert.rejects(client.completions.create({ model: "m", prompt: "Hi", max_tokens: 2 }), (e: Error) => e instanceof OpenAI.APIError && (e as InstanceType<typeof OpenAI.APIError>).status === 503);
    // SIGTERM: the stream in flight ends cleanly, the process exits 0 within 5 s
    const sent = performance.now();
    child.kill("SIGTERM");
    let body = "";
    const decoder = new TextDecoder();
    for (let r = await reader.read(); !r.done; r = await reader.read()) body += decoder.decode(r.value);
    assert.ok(body.trimEnd().endsWith("data: [DONE]"), "the stream ends with [DONE]");
    assert.match(body, /"finish_reason":"stop"/);
    const { code, at } = await exited;
    assert.equal(code, 0, stderr);
    assert.ok(at - sent < 5000, `exited ${(at - sent).toFixed(0)} ms after SIGTERM`);
  } finally {
    child.kill("SIGKILL");
  }
});
