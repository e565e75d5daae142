// bf16 kernels: to be written (placeholder so the module compiles)
export const FORMAT_BF16_PLACEHOLDER: i32 = 0;
