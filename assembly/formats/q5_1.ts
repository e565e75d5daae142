// q5_1 kernels: to be written (placeholder so the module compiles)
export const FORMAT_Q5_1_PLACEHOLDER: i32 = 0;
