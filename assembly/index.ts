// Entry point of the WebAssembly kernels: every kernel family re-exported from one module.
// Kernels take byte offsets into the one imported memory, element counts and strides; no managed objects.
export * from "./formats/index";
export * from "./ops";
export * from "./attention";
export * from "./key-channels";
export * from "./rotation";

/** First byte after the module's static data: the JS allocator starts here. */
export function heapBase(): usize {
  return __heap_base;
}
