/**
 * `kvsplit tune`'s layer × side sensitivity heatmap: one cell per (layer, K or V), coloured by the KLD cost of that
 * cell alone in the reference format (the lowest-bit one measured), labelled with the format the schedule chose.
 */
import type * as vl from "vega-lite";
import type { KvPair } from "../api.js";
import type { KvFormatName } from "../formats/types.js";
import type { TuneMeasurement } from "../eval/tune.js";
import { CONFIG } from "./plots.js";

export function sensitivityHeatmap(m: TuneMeasurement, reference: KvFormatName, chosen: readonly KvPair[], subtitle: string): vl.TopLevelSpec {
  const values = m.cells
    .filter((c) => c.format === reference)
    .map((c) => ({ layer: c.layer, side: c.side === "k" ? "K" : "V", cost: Math.max(c.cost, 1e-9), chosen: chosen[c.layer][c.side] }));
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v6.json",
    title: { text: `Sensitivity per layer: KLD cost of one layer's K or V in ${reference}`, subtitle: [subtitle, "cell text: the format the schedule chose"] },
    width: Math.max(240, 36 * m.nLayers),
    height: 120,
    config: CONFIG,
    data: { values },
    encoding: {
      x: { field: "layer", type: "ordinal", title: "layer" },
      y: { field: "side", type: "nominal", title: null, sort: ["K", "V"] },
    },
    layer: [
      {
        mark: { type: "rect", stroke: "white" },
        encoding: {
          color: { field: "cost", type: "quantitative", title: "KLD cost", scale: { type: "log", scheme: "orangered" } },
          tooltip: [{ field: "layer" }, { field: "side" }, { field: "cost", format: ".2e" }, { field: "chosen" }],
        },
      },
      { mark: { type: "text", fontSize: 10 }, encoding: { text: { field: "chosen" }, color: { value: "black" } } },
    ],
  };
}
