#!/usr/bin/env node
/**
 * `cnm`: the command line client. Wires the real process streams into the command tree and
 * exits with the command's exit code; anything unexpected is a bug, printed with its stack.
 */
import { runCli } from '../cli/program.js';

try {
  process.exitCode = await runCli(process.argv.slice(2), {
    out: process.stdout,
    err: process.stderr,
    stdin: process.stdin,
    env: process.env,
  });
} catch (err) {
  process.stderr.write(
    `cnm: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
  );
  process.exitCode = 1;
}
