// f32 kernels: to be written (placeholder so the module compiles)
export const FORMAT_F32_PLACEHOLDER: i32 = 0;
