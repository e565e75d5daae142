/**
 * Prometheus metrics of a server (prom-client, a registry of its own): what llama-server's /metrics reports, named
 * kvsplit_*: tokens in and out, time spent, requests by endpoint and status, slots working, requests queued, and the
 * KV cache: bytes and tokens held.
 */
import { Counter, Gauge, Registry } from "prom-client";
import type { SlotPool } from "./slots.js";

export class ServerMetrics {
  readonly registry = new Registry();
  readonly promptTokens = new Counter({ name: "kvsplit_prompt_tokens_total", help: "Prompt tokens evaluated", registers: [this.registry] });
  readonly promptCachedTokens = new Counter({ name: "kvsplit_prompt_tokens_cached_total", help: "Prompt tokens taken from a slot's cache", registers: [this.registry] });
  readonly predictedTokens = new Counter({ name: "kvsplit_tokens_predicted_total", help: "Tokens generated", registers: [this.registry] });
  readonly promptSeconds = new Counter({ name: "kvsplit_prompt_seconds_total", help: "Time spent evaluating prompts", registers: [this.registry] });
  readonly predictedSeconds = new Counter({ name: "kvsplit_tokens_predicted_seconds_total", help: "Time spent generating", registers: [this.registry] });
  readonly requests = new Counter({ name: "kvsplit_requests_total", help: "HTTP requests by endpoint and status", labelNames: ["endpoint", "status"], registers: [this.registry] });

  constructor(pool: () => SlotPool | undefined) {
    new Gauge({
      name: "kvsplit_requests_processing", help: "Slots working on a request", registers: [this.registry],
      collect() { this.set(pool()?.busyCount ?? 0); },
    });
    new Gauge({
      name: "kvsplit_requests_deferred", help: "Requests waiting for a slot", registers: [this.registry],
      collect() { this.set(pool()?.queued ?? 0); },
    });
    new Gauge({
      name: "kvsplit_kv_cache_bytes", help: "Bytes of KV cache of all slots", registers: [this.registry],
      collect() { const p = pool(); this.set(p ? p.slotKvBytes * p.slots.length : 0); },
    });
    new Gauge({
      name: "kvsplit_kv_cache_tokens", help: "Tokens held in the KV caches of all slots", registers: [this.registry],
      collect() { this.set(pool()?.slots.reduce((n, s) => n + s.session.position, 0) ?? 0); },
    });
  }
}
