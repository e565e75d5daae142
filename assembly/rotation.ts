// Hadamard rotation of K/V rows and queries, computed the way llama.cpp's CPU backend does (ggml-cpu ops.cpp,
// ggml_compute_forward_fwht_f32): each chunk of n floats (n a power of two) is first scaled by 1/sqrt(n), then
// transformed by in-place butterflies (u, v) -> (u + v, u - v) for span 1, 2, 4, ..., n/2, in f32.
// That is multiplication by the orthonormal Sylvester-Hadamard matrix H[i][j] = (-1)^popcount(i & j) / sqrt(n),
// which is symmetric and its own inverse. The butterfly order is the same as llama.cpp's, so results are bit-identical.

/** dst (count chunks of n f32) = H_n · src chunk by chunk; src == dst transforms in place. n a power of two, >= 4. */
export function fwht_f32(src: usize, dst: usize, n: i32, count: i32): void {
  const scale: f32 = <f32>1.0 / Mathf.sqrt(<f32>n); // as llama.cpp: 1.0f / sqrtf((float)n)
  const scaleV = f32x4.splat(scale);
  const total = n * count;
  for (let i = 0; i < total; i += 4) {
    const off = <usize>i << 2;
    v128.store(dst + off, f32x4.mul(v128.load(src + off), scaleV));
  }
  for (let c = 0; c < count; c++) {
    butterflies_f32(dst + ((<usize>c * <usize>n) << 2), n);
  }
}

/** In-place unnormalised Walsh–Hadamard butterflies over n floats (n a power of two, >= 4). */
function butterflies_f32(row: usize, n: i32): void {
  // span 1: within each 4-lane vector, [a0+a1, a0-a1, a2+a3, a2-a3]
  const signsSpan1 = f32x4(1, -1, 1, -1);
  // span 2: [a0+a2, a1+a3, a0-a2, a1-a3]
  const signsSpan2 = f32x4(1, 1, -1, -1);
  for (let i = 0; i < n; i += 4) {
    const p = row + (<usize>i << 2);
    const x = v128.load(p);
    const lo1 = v128.shuffle<f32>(x, x, 0, 0, 2, 2);
    const hi1 = v128.shuffle<f32>(x, x, 1, 1, 3, 3);
    const y = f32x4.add(lo1, f32x4.mul(hi1, signsSpan1));
    const lo2 = v128.shuffle<f32>(y, y, 0, 1, 0, 1);
    const hi2 = v128.shuffle<f32>(y, y, 2, 3, 2, 3);
    v128.store(p, f32x4.add(lo2, f32x4.mul(hi2, signsSpan2)));
  }
  // spans 4 .. n/2: whole vectors
  for (let span = 4; span < n; span <<= 1) {
    for (let i = 0; i < n; i += span << 1) {
      for (let j = 0; j < span; j += 4) {
        const pu = row + (<usize>(i + j) << 2);
        const pv = pu + (<usize>span << 2);
        const u = v128.load(pu);
        const v = v128.load(pv);
        v128.store(pu, f32x4.add(u, v));
        v128.store(pv, f32x4.sub(u, v));
      }
    }
  }
}
