// q4_0 kernels: to be written (placeholder so the module compiles)
export const FORMAT_Q4_0_PLACEHOLDER: i32 = 0;
