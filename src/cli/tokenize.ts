/**
 * `kvsplit tokenize`: the token ids of a text, as llama-tokenize prints them
 * (`     1 -> '<s>'` per line; `--ids` for a bare list; `--json` for {"tokens": [...]}).
 */
import type { Command } from "commander";
import { loadModel } from "../index.js";
import type { Tokenizer } from "../tokenizer/index.js";
import { addModelOption, addTextInputOptions, checkModelPath, readTextInput, writeJson, type TextInputValues } from "./options.js";

interface TokenizeOptions extends TextInputValues {
  model: string;
  ids?: boolean;
  json?: boolean;
  bos: boolean;
}

export function registerTokenize(program: Command): void {
  const cmd = program.command("tokenize").description("print the token ids of a text");
  addModelOption(cmd);
  addTextInputOptions(cmd, "input");
  cmd
    .option("--ids", "print only the ids, as a list: [1, 2, 3]")
    .option("--no-bos", "do not add BOS/EOS even where the model adds them")
    .option("--json", 'print one JSON object: {"tokens": [...]}')
    .action((opts: TokenizeOptions) => tokenizeCommand(opts));
}

function tokenizeCommand(opts: TokenizeOptions): void {
  const text = readTextInput(opts);
  const modelPath = checkModelPath(opts.model);
  const model = loadModel(modelPath);
  try {
    const tokens = model.tokenizer.encode(text, { addSpecial: opts.bos });
    if (opts.json) {
      writeJson({ tokens });
    } else if (opts.ids) {
      process.stdout.write(`[${tokens.join(", ")}]\n`);
    } else {
      const lines = tokens.map((id) => `${String(id).padStart(6)} -> '${pieceText(model.tokenizer, id)}'`);
      process.stdout.write(lines.join("\n") + (lines.length > 0 ? "\n" : ""));
    }
  } finally {
    model.dispose();
  }
}

const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

/** A token's piece as text; a piece that is not whole UTF-8 (one byte of a character) is shown as <0xHH> escapes. */
function pieceText(tokenizer: Tokenizer, id: number): string {
  const bytes = tokenizer.tokenBytes(id, true);
  try {
    return strictUtf8.decode(bytes);
  } catch {
    return Array.from(bytes, (b) => `<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`).join("");
  }
}
