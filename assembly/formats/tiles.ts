// Four-row tiles (<fmt>_x4.ts): the in-place repack loop the tiled weight formats share. A format is a class type L,
// never instantiated (kquants.ts's pattern: an inlined method called on a null L costs no call), whose
// moveBlock(tb, rb, r, pack) moves row r's block at rb into the tile block at tb (pack) or back out of it.

/**
 * Repack (pack) or restore `rows` (a multiple of 4) rows of `cols` values at w in place, blocks of 2^blockShift values
 * and rowBlock bytes per row; a tile block holds the four rows' blocks b (4 × rowBlock bytes), so tiles take the rows'
 * bytes. scratch: 4 rows' bytes, each tile's rows (pack) or tiles (unpack) copied there and read back.
 */
// @ts-ignore: decorator
@inline export function moveTiles<L>(w: usize, rows: i32, cols: i32, scratch: usize, pack: bool, blockShift: i32, rowBlock: usize): void {
  const nb = cols >> blockShift;
  const rowBytes = <usize>nb * rowBlock;
  for (let t = 0; t + 3 < rows; t += 4) {
    const base = w + <usize>t * rowBytes; // (4, rowBytes) rows or (nb, 4 × rowBlock) tile blocks
    memory.copy(scratch, base, rowBytes << 2);
    for (let b = 0; b < nb; b++) {
      const tb = (pack ? base : scratch) + <usize>b * (rowBlock << 2);
      for (let r = 0; r < 4; r++) {
        changetype<L>(0).moveBlock(tb, (pack ? scratch : base) + <usize>r * rowBytes + <usize>b * rowBlock, r, pack);
      }
    }
  }
}
