/** `cnm info`: a summary of the daemon (`GET /info`). */
import { Command } from 'commander';
import type { Act, CliContext } from '../context.js';
import { Template } from '../template.js';

/** The text `cnm info` prints for a `/info` body. */
export function infoText(i: Record<string, unknown>): string {
  const plugins = (i['Plugins'] as { Network?: string[] } | undefined)?.Network ?? [];
  const gib = (Number(i['MemTotal'] ?? 0) / 1024 ** 3).toFixed(2);
  return [
    'Server:',
    ` Containers: ${String(i['Containers'])}`,
    `  Running: ${String(i['ContainersRunning'])}`,
    `  Stopped: ${String(i['ContainersStopped'])}`,
    ` Server Version: ${String(i['ServerVersion'])}`,
    ' Plugins:',
    `  Network: ${plugins.join(' ')}`,
    ` Kernel Version: ${String(i['KernelVersion'])}`,
    ` Operating System: ${String(i['OperatingSystem'])}`,
    ` OSType: ${String(i['OSType'])}`,
    ` Architecture: ${String(i['Architecture'])}`,
    ` CPUs: ${String(i['NCPU'])}`,
    ` Total Memory: ${gib}GiB`,
    ` Name: ${String(i['Name'])}`,
    ` ID: ${String(i['ID'])}`,
    ` Root Dir: ${String(i['DockerRootDir'])}`,
    '',
  ].join('\n');
}

/** Builds the `info` command. */
export function infoCommand(ctx: CliContext, act: Act): Command {
  return new Command('info')
    .description('Display system-wide information')
    .option('-f, --format <template>', 'format output using a Go template')
    .action((o: { format?: string }) =>
      act(async () => {
        const tpl = o.format === undefined ? undefined : Template.parse(o.format);
        const info = await ctx
          .client()
          .json<Record<string, unknown>>({ method: 'GET', path: '/info' });
        ctx.out.write(tpl === undefined ? infoText(info) : `${tpl.execute(info)}\n`);
      }),
    );
}
