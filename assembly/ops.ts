// element-wise and row kernels: rmsnorm, rope, softmax, swiglu, add
export function add_f32(out: usize, a: usize, n: i32): void {
  for (let i = 0; i < n; i++) { const p = out + (<usize>i << 2); store<f32>(p, load<f32>(p) + load<f32>(a + (<usize>i << 2))); }
}
