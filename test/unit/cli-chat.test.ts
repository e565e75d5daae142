/**
 * `kvsplit chat` with stdin from a pipe (every line one message) on a small synthetic model: answers equal what the
 * library's Conversation gives for the same lines; a chat template file is used; bad input exits 2 naming it; and
 * the original KVSplit's --kvq flags on run.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import path from "node:path";
import { CLI, runCli } from "../helpers/cli.js";
import { useModelDir } from "../helpers/model-dir.js";
import { loadModel } from "../../src/model/model.js";
import { Sampler } from "../../src/model/sampler.js";
import { Conversation } from "../../src/chat/conversation.js";
import { chatTemplateOf } from "../../src/chat/model-template.js";

const md = useModelDir("cli-chat", { dim: 128, nLayers: 2, nHeads: 4, nKvHeads: 2, ffnDim: 256, vocabSize: 320, contextLength: 256 }, 5);

test("chat from a pipe: one answer per line, the library's answers, a summary per turn on stderr", async () => {
  const r = runCli(md.dir, ["chat", "-m", md.modelPath, "-n", "8", "--kv", "K8V4", "--system", "Be brief."], undefined, "Hello there\n\nAnd then?\n");
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /no chat template .* using ChatML/);
  assert.equal((r.stderr.match(/answer tokens/g) ?? []).length, 2, "two turns (the empty line is skipped)");
  assert.match(r.stderr, /\(0 cached\)/);
  assert.match(r.stderr, /\([1-9]\d* cached\)/, "the second turn reuses the cache");
  // the reference: the library's conversation with the same settings
  const model = loadModel(md.modelPath, { threads: 1 });
  try {
    const { template } = chatTemplateOf(model.gguf, model.tokenizer);
    const chat = new Conversation(model.createSession({ kv: { k: "q8_0", v: "q4_0" } }), model.tokenizer, template, "Be brief.");
    let expected = "";
    for (const line of ["Hello there", "And then?"]) {
      for await (const piece of chat.send(line, { sampler: new Sampler({ temperature: 0 }), maxTokens: 8 })) expected += piece.text;
      expected += "\n\n";
    }
    assert.equal(r.stdout, expected);
  } finally {
    model.dispose();
  }
});

test("chat uses --chat-template-file, and a missing or broken template exits 2 naming it", () => {
  const file = path.join(md.dir, "t.jinja");
  writeFileSync(file, "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}[assistant] ");
  const ok = runCli(md.dir, ["chat", "-m", md.modelPath, "-n", "4", "--chat-template-file", file], undefined, "Hi\n");
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stderr, /template: file/);
  const missing = runCli(md.dir, ["chat", "-m", md.modelPath, "--chat-template-file", "nope.jinja"], undefined, "Hi\n");
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.jinja: cannot read the chat template/);
  writeFileSync(file, "{% for m in messages %}");
  const broken = runCli(md.dir, ["chat", "-m", md.modelPath, "--chat-template-file", file], undefined, "Hi\n");
  assert.equal(broken.code, 2);
  assert.match(broken.stderr, /t\.jinja\) does not parse/);
});

test("run takes the original KVSplit's --kvq-key/--kvq-val; a bad width or a clash with -ctk exits 2", () => {
  const r = runCli(md.dir, ["run", "-m", md.modelPath, "-p", "Once", "-n", "2", "--kvq-key", "8", "--kvq-val", "4", "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { kv: { k: string; v: string } };
  assert.deepEqual([out.kv.k, out.kv.v], ["q8_0", "q4_0"]);
  const bad = runCli(md.dir, ["run", "-m", md.modelPath, "-p", "Once", "--kvq", "6"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--kvq 6/);
  const clash = runCli(md.dir, ["run", "-m", md.modelPath, "-p", "Once", "--kvq-key", "8", "-ctk", "q8_0"]);
  assert.equal(clash.code, 2);
  assert.match(clash.stderr, /'--kvq-key 8' conflicts with '-ctk q8_0'/);
});

test("a missing model file: the library throws ModelError with the CLI's words", () => {
  const missing = "no-such-model.gguf";
  assert.throws(() => loadModel(missing), (e: Error) => e.name === "ModelError" && e.message === `${missing}: model file not found`);
  const r = runCli(md.dir, ["run", "-m", missing, "-p", "x"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${missing.replace(/\./g, "\\.")}: model file not found`));
});

test("chat on a terminal (a pseudo-terminal from script(1)): Ctrl-C stops the answer, not the program; /exit quits", async () => {
  const { spawn } = await import("node:child_process");
  const command = [process.execPath, CLI, "chat", "-m", md.modelPath, "-c", "256", "--context-shift"].map((a) => `'${a}'`).join(" ");
  const child = spawn("script", ["-qfec", command, "/dev/null"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  child.stdout.on("data", (d: Buffer) => (out += d.toString()));
  const until = async (pattern: RegExp, ms: number) => {
    for (const end = Date.now() + ms; !pattern.test(out) && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
    assert.match(out, pattern);
  };
  try {
    await until(/> /, 60_000); // the prompt: the model is loaded
    child.stdin.write("Tell me a story\r");
    await new Promise((r) => setTimeout(r, 400)); // the answer streams (with --context-shift it would not end by itself)
    child.stdin.write("\x03");
    await until(/stopped by Ctrl-C/, 20_000);
    await until(/stopped by Ctrl-C[^]*> /, 5_000); // back at the prompt
    child.stdin.write("/exit\r");
    const code = await new Promise((r) => child.on("exit", r));
    assert.equal(code, 0, out);
  } finally {
    child.kill("SIGKILL");
  }
});
