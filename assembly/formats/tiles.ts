// Four-row tiles (<fmt>_x4.ts): the in-place repack loop the tiled weight formats share. A format is a class type L,
// never instantiated (kquants.ts's pattern: an inlined method called on a null L costs no call), whose
// moveBlock(tb, rb, r, pack) moves row r's block at rb into the tile block at tb (pack) or back out of it.
//
// Tiles go in groups of up to GROUP_ROWS / 4, and within a group of g tiles, column segment by segment (q8_0_x4.ts's
// file comment): tile k's block b of the segment starting at block s0 (len blocks) at (s0 × g + k × len + b − s0) tile
// blocks from the group. With one segment (segment = nb: q4_K's, q8_0's rows of up to 96 blocks) that is tile after
// tile, block after block.

/** Rows per group of tiles (32: 8 tiles), the most a repack copies to its scratch at once. */
export const GROUP_ROWS: i32 = 32;

/**
 * Repack (pack) or restore `rows` (a multiple of 4) rows of `cols` values at w in place, blocks of 2^blockShift values
 * and rowBlock bytes per row, column segments of `segment` blocks (a multiple of 4, or nb); a tile block holds the four
 * rows' blocks b (4 × rowBlock bytes), so tiles take the rows' bytes. scratch: GROUP_ROWS rows' bytes, each group's
 * rows (pack) or tiles (unpack) copied there and read back.
 */
// @ts-ignore: decorator
@inline export function moveTiles<L>(w: usize, rows: i32, cols: i32, scratch: usize, pack: bool, blockShift: i32, rowBlock: usize, segment: i32): void {
  const nb = cols >> blockShift;
  const rowBytes = <usize>nb * rowBlock;
  const tileBlock = rowBlock << 2;
  for (let t = 0; t + 3 < rows; t += GROUP_ROWS) {
    const g = min(GROUP_ROWS, rows - t) >> 2; // the group's tiles
    const base = w + <usize>t * rowBytes; // (4g, rowBytes) rows or the group's tile blocks
    memory.copy(scratch, base, <usize>g * (rowBytes << 2));
    const tiles = pack ? base : scratch;
    const rowsAt = pack ? scratch : base;
    for (let s0 = 0; s0 < nb; s0 += segment) {
      const len = min(segment, nb - s0);
      for (let k = 0; k < g; k++) {
        const seg = tiles + (<usize>s0 * <usize>g + <usize>k * <usize>len) * tileBlock; // tile k's blocks of the segment
        for (let b = 0; b < len; b++) {
          const tb = seg + <usize>b * tileBlock;
          for (let r = 0; r < 4; r++) {
            changetype<L>(0).moveBlock(tb, rowsAt + <usize>((k << 2) + r) * rowBytes + <usize>(s0 + b) * rowBlock, r, pack);
          }
        }
      }
    }
  }
}
