/** `cnm version`: client facts, then the daemon's (`GET /version`). */
import { Command } from 'commander';
import { CLIENT_API_VERSION, CLIENT_VERSION } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { Template } from '../template.js';

interface VersionBody {
  Version: string;
  ApiVersion: string;
  MinAPIVersion: string;
  GitCommit: string;
  GoVersion: string;
  Os: string;
  Arch: string;
  KernelVersion: string;
  BuildTime: string;
}

/** The client section, as the docker CLI prints it. */
export function clientText(): string {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return [
    'Client:',
    ` Version:           ${CLIENT_VERSION}`,
    ` API version:       ${CLIENT_API_VERSION}`,
    ` Node version:      ${process.version}`,
    ` OS/Arch:           ${process.platform}/${arch}`,
    '',
  ].join('\n');
}

/** The server section from a `/version` body. */
export function serverText(v: VersionBody): string {
  return [
    `Server: cnm ${v.Version}`,
    ' Engine:',
    `  Version:          ${v.Version}`,
    `  API version:      ${v.ApiVersion} (minimum version ${v.MinAPIVersion})`,
    `  Runtime version:  ${v.GoVersion}`,
    `  OS/Arch:          ${v.Os}/${v.Arch}`,
    `  Kernel version:   ${v.KernelVersion}`,
    '',
  ].join('\n');
}

/** Builds the `version` command. */
export function versionCommand(ctx: CliContext, act: Act): Command {
  return new Command('version')
    .description('Show the cnm version information')
    .option('-f, --format <template>', 'format output using a Go template')
    .action((o: { format?: string }) =>
      act(async () => {
        const client = {
          Version: CLIENT_VERSION,
          ApiVersion: CLIENT_API_VERSION,
          Os: process.platform,
          Arch: process.arch,
        };
        if (o.format !== undefined) {
          const tpl = Template.parse(o.format);
          const server = await ctx.client().json<VersionBody>({ method: 'GET', path: '/version' });
          ctx.out.write(`${tpl.execute({ Client: client, Server: server })}\n`);
          return 0;
        }
        ctx.out.write(clientText());
        const server = await ctx.client().json<VersionBody>({ method: 'GET', path: '/version' });
        ctx.out.write(`\n${serverText(server)}`);
        return 0;
      }),
    );
}
