// attention over the packed KV cache: placeholder until the KV work lands
export function attentionPlaceholder(): i32 { return 0; }
