#!/usr/bin/env node
/**
 * The `kvsplit` command: argument parsing and dispatch only. Each subcommand lives in its own file and is a thin
 * layer over the library. Exit codes: 0 ok, 1 runtime failure, 2 bad arguments or bad input file.
 */
import { readFileSync } from "node:fs";
import { Command, CommanderError } from "commander";
import { describeError, exitCodeFor, EXIT_BAD_INPUT, EXIT_OK } from "./errors.js";
import { expandMultiLetterShortFlags } from "./options.js";
import { registerRun } from "./run.js";
import { registerChat } from "./chat.js";
import { registerServe } from "./serve.js";
import { registerTokenize } from "./tokenize.js";
import { registerSynth } from "./synth.js";
import { registerBench } from "./bench.js";
import { registerPerplexity } from "./perplexity.js";
import { registerCompare } from "./compare.js";
import { registerPlan } from "./plan.js";
import { registerTune } from "./tune.js";

/** Every subcommand, registered in the order `--help` lists them. */
const SUBCOMMANDS: ReadonlyArray<(program: Command) => void> = [registerRun, registerChat, registerServe, registerTokenize, registerSynth, registerPerplexity, registerCompare, registerTune, registerBench, registerPlan];

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const program = new Command("kvsplit")
    .description("LLM inference with keys and values cached in independently chosen formats")
    .version(packageVersion(), "-v, --version")
    .exitOverride()
    .showSuggestionAfterError(true)
    .configureOutput({ writeOut: (s) => process.stdout.write(s), writeErr: (s) => process.stderr.write(s) });
  for (const register of SUBCOMMANDS) register(program);

  try {
    await program.parseAsync(expandMultiLetterShortFlags(argv), { from: "user" });
    return EXIT_OK;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed its message (or the help); exit code 0 is --help / --version / `help CMD`.
      return err.exitCode === 0 ? EXIT_OK : EXIT_BAD_INPUT;
    }
    process.stderr.write(describeError(err) + "\n");
    return exitCodeFor(err);
  }
}

// A reader that closes the pipe early (`kvsplit run ... | head`) is not an error of ours.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(EXIT_OK);
  throw err;
});

process.exit(await main(process.argv.slice(2)));
