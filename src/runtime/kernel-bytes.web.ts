/**
 * The browser's kernel bytes (replaces kernel-bytes.ts in the web bundle): a page cannot read files synchronously,
 * so the engine worker fetches the build it uses and hands it over here before it loads a model.
 */
import type { KernelVariant } from "./wasm.js";

const provided: Partial<Record<KernelVariant, Uint8Array>> = {};

export function provideKernelBytes(which: KernelVariant, bytes: Uint8Array): void {
  provided[which] = bytes;
}

export function kernelBytes(which: KernelVariant): Uint8Array {
  const bytes = provided[which];
  if (!bytes) throw new Error(`the ${which} kernel build was not fetched (provideKernelBytes first)`);
  return bytes;
}
