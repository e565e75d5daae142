import { test } from "node:test";
import assert from "node:assert/strict";
import {
  exactOptions,
  parseKvConfig,
  parseKvConfigList,
  kvConfigName,
  resolveKvFlags,
  KvConfigError,
  KvFlagConflictError,
} from "../../src/kv/shorthand.js";
import { KV_FORMAT_NAMES } from "../../src/formats/types.js";

test("shorthands map bits to formats (case-insensitive)", () => {
  assert.deepEqual(parseKvConfig("F16"), { name: "F16", k: "f16", v: "f16" });
  assert.deepEqual(parseKvConfig("f32"), { name: "F32", k: "f32", v: "f32" });
  assert.deepEqual(parseKvConfig("K8V4"), { name: "K8V4", k: "q8_0", v: "q4_0" });
  assert.deepEqual(parseKvConfig("k4v8"), { name: "K4V8", k: "q4_0", v: "q8_0" });
  assert.deepEqual(parseKvConfig("K5V5"), { name: "K5V5", k: "q5_0", v: "q5_0" });
  assert.deepEqual(parseKvConfig("K16V4"), { name: "K16V4", k: "f16", v: "q4_0" });
  assert.deepEqual(parseKvConfig("K32V8"), { name: "K32V8", k: "f32", v: "q8_0" });
  // K16V16 is F16 by another spelling: the canonical name is F16.
  assert.deepEqual(parseKvConfig("K16V16"), { name: "F16", k: "f16", v: "f16" });
  // kvsplit's own codebook formats: 3 and 2 bits
  assert.deepEqual(parseKvConfig("K8V3"), { name: "K8V3", k: "q8_0", v: "iq3_nl" });
  assert.deepEqual(parseKvConfig("k3v2"), { name: "K3V2", k: "iq3_nl", v: "iq2_nl" });
  assert.deepEqual(parseKvConfig("iq4_nl/iq3_nl+w16"), { name: "iq4_nl/iq3_nl+w16", k: "iq4_nl", v: "iq3_nl", window: 16 });
  // one-byte-scale codebook formats, and a window in q8_0 (+q8, any order)
  assert.deepEqual(parseKvConfig("iq2_e8/iq2_e8+q8+w44"), { name: "iq2_e8/iq2_e8+w44+q8", k: "iq2_e8", v: "iq2_e8", window: 44, exactFormat: "q8_0" });
  assert.deepEqual(parseKvConfig("K3V3+s4+q8"), { name: "K3V3+s4+q8", k: "iq3_nl", v: "iq3_nl", sinks: 4, exactFormat: "q8_0" });
  assert.deepEqual(exactOptions(parseKvConfig("K4V4+w8+q8")), { kvWindow: 8, kvExactFormat: "q8_0" });
  assert.deepEqual(exactOptions(parseKvConfig("K4V4+w8")), { kvWindow: 8 });
});

test("explicit pairs accept every KV format in the table", () => {
  assert.deepEqual(parseKvConfig("q8_0/q4_0"), { name: "K8V4", k: "q8_0", v: "q4_0" });
  assert.deepEqual(parseKvConfig("k=q8_0,v=q4_0"), { name: "K8V4", k: "q8_0", v: "q4_0" });
  assert.deepEqual(parseKvConfig("V=q4_0, K=Q8_0"), { name: "K8V4", k: "q8_0", v: "q4_0" });
  assert.deepEqual(parseKvConfig("q5_1/iq4_nl"), { name: "q5_1/iq4_nl", k: "q5_1", v: "iq4_nl" });
  assert.deepEqual(parseKvConfig("bf16"), { name: "bf16/bf16", k: "bf16", v: "bf16" });
  for (const k of KV_FORMAT_NAMES) {
    for (const v of KV_FORMAT_NAMES) {
      const c = parseKvConfig(`${k}/${v}`);
      assert.equal(c.k, k);
      assert.equal(c.v, v);
      // The canonical name parses back to the same pair.
      assert.deepEqual(parseKvConfig(c.name), c);
    }
  }
});

test("kvConfigName gives the shorthand where one exists", () => {
  assert.equal(kvConfigName("f16", "f16"), "F16");
  assert.equal(kvConfigName("f32", "f32"), "F32");
  assert.equal(kvConfigName("q8_0", "q8_0"), "K8V8");
  assert.equal(kvConfigName("q4_0", "f16"), "K4V16");
  assert.equal(kvConfigName("q4_1", "q4_0"), "q4_1/q4_0");
});

test("unknown configs are rejected with the allowed spellings", () => {
  for (const bad of ["K9V4", "K8V1", "q9_0/q4_0", "k=q8_0,v=q7", "", "F8", "q8_1", "q8_0/q4_0/f16", "k=q8_0"]) {
    assert.throws(
      () => parseKvConfig(bad),
      (err: unknown) => {
        assert.ok(err instanceof KvConfigError, `${bad}: ${String(err)}`);
        assert.match(err.message, new RegExp(`'${bad.replace(/[/]/g, "\\/")}'`));
        assert.match(err.message, /allowed: F16, F32, KxVy/);
        assert.match(err.message, /q8_0, q5_1, q5_0, q4_1, q4_0, iq4_nl, iq3_nl, iq2_nl/);
        return true;
      },
    );
  }
  assert.throws(() => parseKvConfig("K9V4"), /K9: no format of that many bits/);
  assert.throws(() => parseKvConfig("q8_0/q7"), /'q7' is not a KV cache format/);
});

test("config lists", () => {
  assert.deepEqual(
    parseKvConfigList("F16,K8V8,K8V4").map((c) => c.name),
    ["F16", "K8V8", "K8V4"],
  );
  assert.deepEqual(
    parseKvConfigList("F16, k=q4_0,v=q8_0, q5_1/q5_1").map((c) => [c.k, c.v]),
    [["f16", "f16"], ["q4_0", "q8_0"], ["q5_1", "q5_1"]],
  );
  assert.throws(() => parseKvConfigList("F16,,K8V4"), /empty entry/);
  assert.throws(() => parseKvConfigList("F16,K9V9"), KvConfigError);
});

test("-ctk/-ctv resolution and the --kv conflict", () => {
  assert.deepEqual(resolveKvFlags({}), { name: "F16", k: "f16", v: "f16" });
  assert.deepEqual(resolveKvFlags({ ctk: "q8_0" }), { name: "K8V16", k: "q8_0", v: "f16" });
  assert.deepEqual(resolveKvFlags({ ctk: "Q8_0", ctv: "q4_0" }), { name: "K8V4", k: "q8_0", v: "q4_0" });
  assert.deepEqual(resolveKvFlags({ ctv: "iq4_nl" }), { name: "f16/iq4_nl", k: "f16", v: "iq4_nl" });
  assert.deepEqual(resolveKvFlags({ kv: "K4V4" }), { name: "K4V4", k: "q4_0", v: "q4_0" });
  assert.throws(() => resolveKvFlags({ kv: "K8V4", ctk: "q8_0" }), KvFlagConflictError);
  assert.throws(() => resolveKvFlags({ kv: "K8V4", ctv: "q4_0" }), /conflicts with '-ctv q4_0'/);
  assert.throws(() => resolveKvFlags({ ctk: "q3_k" }), /'q3_k' is not a KV cache format/);
});

test("the original KVSplit's --kvq, --kvq-key and --kvq-val: 16/8/4 bits, the specific ones over --kvq, conflicts named", () => {
  assert.deepEqual(resolveKvFlags({ kvq: "8" }), { name: "K8V8", k: "q8_0", v: "q8_0" });
  assert.deepEqual(resolveKvFlags({ kvqKey: "8", kvqVal: "4" }), { name: "K8V4", k: "q8_0", v: "q4_0" });
  assert.deepEqual(resolveKvFlags({ kvq: "4", kvqKey: "16" }), { name: "K16V4", k: "f16", v: "q4_0" });
  assert.deepEqual(resolveKvFlags({ kvqVal: "4" }), { name: "K16V4", k: "f16", v: "q4_0" });
  assert.deepEqual(resolveKvFlags({ kvq: "8", window: 16 }), { name: "K8V8+w16", k: "q8_0", v: "q8_0", window: 16 });
  assert.throws(() => resolveKvFlags({ kvq: "5" }), (e: Error) => e instanceof KvConfigError && /--kvq 5/.test(e.message) && /16 \(f16\), 8 \(q8_0\), 4 \(q4_0\)/.test(e.message));
  assert.throws(() => resolveKvFlags({ kvqKey: "8", ctk: "q8_0" }), (e: Error) => e instanceof KvFlagConflictError && /'--kvq-key 8' conflicts with '-ctk q8_0'/.test(e.message));
  assert.throws(() => resolveKvFlags({ kvq: "8", kv: "K8V4" }), /'--kvq 8' conflicts with '--kv K8V4'/);
  assert.throws(() => resolveKvFlags({ kvqVal: "4", schedule: "s.json" }), /conflicts with '--kv-schedule s.json'/);
});
