/**
 * The `cnm` command tree. Commands reach the daemon only through `ApiClient`; the client is
 * built on first use from the global flags (`-H`, `--tls*`) and `CNM_HOST`, `CNM_TLS_VERIFY`,
 * `CNM_CERT_PATH`, so help and flag errors never touch the socket or the certificate files.
 */
import { Command, CommanderError } from 'commander';
import { ApiClient, CLIENT_VERSION, resolveHost, resolveTls, type TlsFlags } from './client.js';
import { runAction, type Act, type CliContext } from './context.js';
import { benchCommand } from './commands/bench.js';
import { composeCommand } from './commands/compose.js';
import { doctorCommand } from './commands/doctor.js';
import { execCommand } from './commands/exec.js';
import { infoCommand } from './commands/info.js';
import { inspectCommand } from './commands/inspect.js';
import { logsCommand } from './commands/logs.js';
import { labelCommand, namespaceCommand } from './commands/namespace.js';
import { networkConnectCommand } from './commands/network-connect.js';
import { networkCreateCommand } from './commands/network-create.js';
import { networkDisconnectCommand } from './commands/network-disconnect.js';
import { networkInspectCommand } from './commands/network-inspect.js';
import { networkLsCommand } from './commands/network-ls.js';
import { networkPruneCommand } from './commands/network-prune.js';
import { networkRmCommand } from './commands/network-rm.js';
import { policyCommand } from './commands/policy.js';
import { psCommand } from './commands/ps.js';
import { rmCommand } from './commands/rm.js';
import { runCommand } from './commands/run.js';
import { serviceCommand } from './commands/service.js';
import { startCommand } from './commands/start.js';
import { stopCommand } from './commands/stop.js';
import { updateCommand } from './commands/update.js';
import { versionCommand } from './commands/version.js';

/** The process-facing parts the CLI needs; `main/cli.ts` passes the real ones. */
export interface CliIo {
  out: NodeJS.WritableStream;
  err: NodeJS.WritableStream;
  stdin: NodeJS.ReadableStream & { isTTY?: boolean };
  env: Record<string, string | undefined>;
}

function applyEverywhere(cmd: Command, io: CliIo): void {
  // addCommand() does not pass these settings down, so set them on every node of the tree.
  cmd.exitOverride();
  cmd.configureOutput({ writeOut: (s) => io.out.write(s), writeErr: (s) => io.err.write(s) });
  for (const sub of cmd.commands) applyEverywhere(sub, io);
}

/** Builds the command tree; `state.exitCode` receives each command's exit code. */
export function buildProgram(ctx: CliContext, state: { exitCode: number }, io: CliIo): Command {
  const act: Act = (body) => runAction(ctx, state, body);
  const program = new Command('cnm')
    .description('A container network engine (Docker CNM) — command line client')
    .option('-H, --host <host>', 'daemon to connect to: unix:///path or tcp://ADDR:PORT')
    .option('--tls', 'use TLS; implied by --tlsverify')
    .option('--tlsverify', "use TLS and verify the daemon's certificate (mutual TLS)")
    .option('--tlscacert <file>', 'trust certificates signed by this CA (default ca.pem)')
    .option('--tlscert <file>', 'TLS client certificate (default cert.pem)')
    .option('--tlskey <file>', 'TLS client key (default key.pem)')
    .version(`cnm version ${CLIENT_VERSION}`, '-v, --version', 'print version information and quit')
    .enablePositionalOptions()
    .showSuggestionAfterError();
  const network = new Command('network').description('Manage networks');
  for (const make of [
    networkConnectCommand,
    networkCreateCommand,
    networkDisconnectCommand,
    networkInspectCommand,
    networkLsCommand,
    networkPruneCommand,
    networkRmCommand,
  ]) {
    network.addCommand(make(ctx, act));
  }
  program.addCommand(network);
  for (const make of [
    runCommand,
    psCommand,
    inspectCommand,
    execCommand,
    logsCommand,
    stopCommand,
    startCommand,
    rmCommand,
    updateCommand,
    versionCommand,
    infoCommand,
    doctorCommand,
    composeCommand,
    serviceCommand,
    policyCommand,
    namespaceCommand,
    labelCommand,
    benchCommand,
  ]) {
    program.addCommand(make(ctx, act));
  }
  applyEverywhere(program, io);
  return program;
}

/**
 * Runs the CLI on `argv` (without `node` and the script) and resolves with the exit code.
 * @example process.exitCode = await runCli(process.argv.slice(2), { out: process.stdout, ... })
 */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const state = { exitCode: 0 };
  let client: ApiClient | undefined;
  let program: Command | undefined;
  const ctx: CliContext = {
    ...io,
    now: () => new Date(),
    client: () => {
      if (client) return client;
      const opts = program?.opts<TlsFlags & { host?: string }>() ?? {};
      const host = resolveHost(opts.host, io.env['CNM_HOST']);
      // Certificates matter only for tcp://; a unix socket never reads them.
      const tls = host.startsWith('tcp://') ? resolveTls(opts, io.env) : undefined;
      return (client = new ApiClient(host, tls));
    },
  };
  program = buildProgram(ctx, state, io);
  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and --version "fail" with code 0; real usage errors were already printed.
      return err.exitCode;
    }
    throw err;
  }
  return state.exitCode;
}
