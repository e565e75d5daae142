// Keys per channel (KIVI's layout, `KvPair.kLayout = "channel"`): a group of KEY_GROUP consecutive positions of one kv
// head is stored as headDim blocks of the K format, block c holding channel c of the group's positions in position
// order, so each channel gets its own scale (and min) per group: a channel with large keys no longer coarsens the
// others, and a block never spans heads whatever headDim is. A group is quantized once it is complete, from the
// exact f16 rows the window keeps (src/kv/cache.ts); until then its positions are read from those rows.
import { KEY_GROUP, quantizeRow_byType } from "./attention-common";
import { loadF16 } from "./formats/common";

/**
 * Quantize groups of keys per channel. Items [itemStart, itemEnd) are (group j, kv head h) = (item / nKvHeads,
 * item % nKvHeads). Group j's rows are the f16 rows at src + h·srcHeadStride + (j·KEY_GROUP + i)·headDim·2,
 * i = 0 .. KEY_GROUP − 1 (rotated as the packed side is); its headDim blocks go to dst + h·dstHeadStride +
 * j·headDim·blockBytes, block c at + c·blockBytes.
 *   scratch: (KEY_GROUP) f32, this thread's
 */
export function storeKeyGroups_channel(
  itemStart: i32, itemEnd: i32, scratch: usize, type: i32, src: usize, srcHeadStride: i32, nKvHeads: i32, headDim: i32,
  dst: usize, dstHeadStride: i32, blockBytes: i32,
): void {
  const rowBytes = <usize>headDim << 1;
  const groupBytes = <usize>headDim * <usize>blockBytes;
  for (let item = itemStart; item < itemEnd; item++) {
    const j = item / nKvHeads;
    const h = item % nKvHeads;
    const rows = src + <usize>h * <usize>srcHeadStride + <usize>(j * KEY_GROUP) * rowBytes;
    const out = dst + <usize>h * <usize>dstHeadStride + <usize>j * groupBytes;
    for (let c = 0; c < headDim; c++) {
      for (let i = 0; i < KEY_GROUP; i++) store<f32>(scratch + (<usize>i << 2), loadF16(rows + <usize>i * rowBytes + (<usize>c << 1)));
      quantizeRow_byType(type, scratch, out + <usize>c * <usize>blockBytes, KEY_GROUP);
    }
  }
}
