/**
 * Which shard (WebAssembly memory of at most 4 GiB) holds which layer's weights: a pure plan from byte counts,
 * used by loadWeights and by the memory planner alike.
 *
 * Shard 0 holds the "head" tensors (token embedding, output matrix and norm) and the first layers; layers then fill
 * shards in order, each shard keeping room for its per-shard scratch (src/model/memory.ts shardScratchBytes).
 * Consecutive layers share a shard, so activations hop between memories at most once per shard boundary.
 */

export interface WeightPlacement {
  /** (nLayers) the shard holding each layer's weights. */
  readonly layerShard: number[];
  /** (nShards) weight bytes placed in each shard. */
  readonly shardWeights: number[];
}

export class PlacementError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PlacementError";
  }
}

/**
 * Greedy placement: shard 0 gets the head tensors, then layers in order while they fit beside `shardScratch`;
 * a layer that does not fit opens the next shard. Throws PlacementError when a layer (or the head) does not fit an
 * empty shard.
 */
export function placeWeights(headBytes: number, layerBytes: readonly number[], shardBytes: number, shardScratch: number): WeightPlacement {
  const room = shardBytes - shardScratch;
  if (headBytes > room) {
    throw new PlacementError(`the embedding and output tensors need ${headBytes} bytes; one memory has room for ${Math.max(0, room)} beside its scratch`);
  }
  const layerShard: number[] = [];
  const shardWeights = [headBytes];
  for (let l = 0; l < layerBytes.length; l++) {
    const bytes = layerBytes[l];
    if (bytes > room) throw new PlacementError(`layer ${l}'s weights need ${bytes} bytes; one memory has room for ${Math.max(0, room)} beside its scratch`);
    if (shardWeights[shardWeights.length - 1] + bytes > room) shardWeights.push(0);
    shardWeights[shardWeights.length - 1] += bytes;
    layerShard.push(shardWeights.length - 1);
  }
  return { layerShard, shardWeights };
}
