/**
 * The bytes of the kernel builds (build/kernels.wasm, kernels-relaxed.wasm, kernels-single.wasm) in Node: read from the package.
 * The browser bundle replaces this file with kernel-bytes.web.ts (scripts/build-web.mjs), where the page's engine
 * worker fetches them first.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { KernelVariant } from "./wasm.js";

const wasmPaths: Record<KernelVariant, string> = {
  plain: fileURLToPath(new URL("../../../build/kernels.wasm", import.meta.url)),
  relaxed: fileURLToPath(new URL("../../../build/kernels-relaxed.wasm", import.meta.url)),
  single: fileURLToPath(new URL("../../../build/kernels-single.wasm", import.meta.url)),
};

export function kernelBytes(which: KernelVariant): Uint8Array {
  return readFileSync(wasmPaths[which]);
}
