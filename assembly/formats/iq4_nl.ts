// iq4_nl kernels: to be written (placeholder so the module compiles)
export const FORMAT_IQ4_NL_PLACEHOLDER: i32 = 0;
