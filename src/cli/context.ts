/** What every command gets: I/O streams, environment, clock and a lazily built API client. */
import type { ApiClient } from './client.js';

/** The command's world; tests pass in-memory streams and a fake client. */
export interface CliContext {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
  now: () => Date;
  /** Built on first use so `--help` and argument errors never touch the socket. */
  client: () => ApiClient;
}

/** A command body: returns its exit code (or nothing for 0). */
export type CommandBody = () => Promise<number | void>;

/**
 * Runs a command body, printing `CliError`s (daemon errors, bad flags) to stderr and recording
 * the exit code in `state`; anything else is a bug and propagates.
 */
export async function runAction(
  ctx: CliContext,
  state: { exitCode: number },
  body: CommandBody,
): Promise<void> {
  const { CliError } = await import('./client.js');
  const { TemplateError } = await import('./template.js');
  try {
    const code = await body();
    if (typeof code === 'number') state.exitCode = code;
  } catch (err) {
    if (err instanceof CliError) {
      ctx.err.write(`${err.message}\n`);
      state.exitCode = err.exitCode;
    } else if (err instanceof TemplateError) {
      ctx.err.write(`Template parsing error: ${err.message}\n`);
      state.exitCode = 1;
    } else {
      throw err;
    }
  }
}

/** Runs a command body with error printing and exit-code recording bound in. */
export type Act = (body: CommandBody) => Promise<void>;
