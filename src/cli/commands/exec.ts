/** `cnm exec`: runs a command in a running container; exits with its exit code. */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { FrameDecoder, writeOut } from '../frames.js';
import { collect } from '../options.js';
import { resolveEnv } from './run.js';

/** The `POST /cnm/containers/{id}/exec` request. */
export function execRequest(
  container: string,
  cmd: string[],
  o: { env?: string[] },
  env: Record<string, string | undefined>,
): ApiRequest {
  if (cmd.length === 0) throw new CliError('"cnm exec" requires a command to run');
  const body: Record<string, unknown> = { Cmd: cmd };
  if (o.env !== undefined) body['Env'] = resolveEnv(o.env, env);
  return { method: 'POST', path: `/cnm/containers/${encodeURIComponent(container)}/exec`, body };
}

/**
 * Demultiplexes an exec stream to `out`/`err` and returns the exit code from the final frame.
 * @throws CliError when the stream ends without an exit frame (daemon went away)
 */
export async function demuxExec(
  stream: AsyncIterable<Buffer | string> | Iterable<Buffer | string>,
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const decoder = new FrameDecoder();
  let code: number | undefined;
  for await (const chunk of stream) {
    for (const f of decoder.push(Buffer.from(chunk))) {
      if (f.stream === 1) await writeOut(out, f.payload);
      else if (f.stream === 2) await writeOut(err, f.payload);
      else if (f.stream === 3 && f.payload.length === 4) code = f.payload.readInt32BE(0);
    }
  }
  if (code === undefined) throw new CliError('Exec stream ended without an exit code');
  return code;
}

/** Builds the `exec` command. */
export function execCommand(ctx: CliContext, act: Act): Command {
  return new Command('exec')
    .description('Execute a command in a running container')
    .argument('<container>')
    .argument('<command...>', 'command and arguments (after --)')
    .passThroughOptions()
    .option('-e, --env <key=value>', 'environment variable (repeatable)', collect)
    .action((container: string, cmd: string[], o: { env?: string[] }) =>
      act(async () => {
        // With passThroughOptions commander keeps a `--` that follows the container name.
        const argv = cmd[0] === '--' ? cmd.slice(1) : cmd;
        const res = await ctx.client().open(execRequest(container, argv, o, ctx.env));
        return demuxExec(res, ctx.out, ctx.err);
      }),
    );
}
