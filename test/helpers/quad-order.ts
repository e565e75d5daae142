/**
 * The "quad order" of assembly/formats/matmul-wide-k.ts in plain TypeScript, the independent reference for
 * quantizeRowsWide_q8_K and for feeding crafted q8_K rows to matmulWide_<K-quant>: in every 256-value super-block,
 * value 64q + 16j + 4m + e (group 4q + j, four-value lane m, e < 4) moves to 64q + 16m + 4j + e.
 */
const Q8_K_BYTES = 292; // f32 d, 256 i8 values, 16 i16 group sums

/** q8_K rows ((rows, cols / 256 × 292) bytes) with each super-block's values in quad order; d and sums as they are. */
export function q8KInQuadOrder(rows: Uint8Array, cols: number): Uint8Array {
  const out = rows.slice();
  const blocks = rows.length / Q8_K_BYTES;
  if (!Number.isInteger(blocks) || cols % 256 !== 0) throw new RangeError(`not q8_K rows of ${cols} values: ${rows.length} bytes`);
  for (let b = 0; b < blocks; b++) {
    const values = b * Q8_K_BYTES + 4;
    for (let q = 0; q < 4; q++) {
      for (let j = 0; j < 4; j++) {
        for (let m = 0; m < 4; m++) {
          for (let e = 0; e < 4; e++) out[values + 64 * q + 16 * m + 4 * j + e] = rows[values + 64 * q + 16 * j + 4 * m + e];
        }
      }
    }
  }
  return out;
}
