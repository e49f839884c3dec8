/**
 * `cnm namespace create|label|ls|rm` (namespaces and their labels, for policies'
 * namespaceSelector) and `cnm label CONTAINER k=v k-` (container labels, for podSelector).
 */
import { Command } from 'commander';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { labelList } from '../format.js';
import { collect, parseKeyValues } from '../options.js';
import { renderList } from '../template.js';

interface WireNamespace {
  Name: string;
  Labels: Record<string, string>;
  Containers: number;
  Policies: number;
}

/** kubectl's label arguments: `k=v` sets, `k-` removes. */
export function parseLabelArgs(args: readonly string[]): {
  Set: Record<string, string>;
  Remove: string[];
} {
  const set: string[] = [];
  const remove: string[] = [];
  for (const a of args) {
    if (a.endsWith('-') && !a.includes('=')) remove.push(a.slice(0, -1));
    else if (a.includes('=')) set.push(a);
    else throw new CliError(`Invalid label "${a}": expected key=value or key-`);
  }
  return { Set: parseKeyValues(set, 'label', true), Remove: remove };
}

/** Builds the `namespace` command group. */
export function namespaceCommand(ctx: CliContext, act: Act): Command {
  const cmd = new Command('namespace').alias('ns').description('Manage policy namespaces');
  cmd.addCommand(
    new Command('create')
      .description('Create a namespace')
      .argument('<name>')
      .option('-l, --label <key=value>', 'namespace label (repeatable)', collect)
      .action((name: string, o: { label?: string[] }) =>
        act(async () => {
          await ctx.client().json({
            method: 'POST',
            path: '/cnm/namespaces',
            body: { Name: name, Labels: parseKeyValues(o.label, '--label', true) },
          });
          ctx.out.write(`namespace/${name} created\n`);
        }),
      ),
  );
  cmd.addCommand(
    new Command('label')
      .description('Set (k=v) or remove (k-) labels of a namespace')
      .argument('<name>')
      .argument('<labels...>')
      .action((name: string, labels: string[]) =>
        act(async () => {
          await ctx.client().json({
            method: 'POST',
            path: `/cnm/namespaces/${encodeURIComponent(name)}/labels`,
            body: parseLabelArgs(labels),
          });
          ctx.out.write(`namespace/${name} labeled\n`);
        }),
      ),
  );
  cmd.addCommand(
    new Command('ls')
      .alias('list')
      .description('List namespaces')
      .option('--format <template>', 'format output using a Go template')
      .action((o: { format?: string }) =>
        act(async () => {
          const list = await ctx
            .client()
            .json<WireNamespace[]>({ method: 'GET', path: '/cnm/namespaces' });
          const rows = list.map((n) => ({
            Name: n.Name,
            Labels: labelList(n.Labels),
            Containers: String(n.Containers),
            Policies: String(n.Policies),
          }));
          ctx.out.write(
            renderList(
              o.format ?? 'table {{.Name}}\t{{.Containers}}\t{{.Policies}}\t{{.Labels}}',
              rows,
              {
                Name: 'NAME',
                Labels: 'LABELS',
                Containers: 'CONTAINERS',
                Policies: 'POLICIES',
              },
            ),
          );
        }),
      ),
  );
  cmd.addCommand(
    new Command('rm')
      .alias('remove')
      .description('Remove namespaces (they must hold no containers and no policies)')
      .argument('<name...>')
      .action((names: string[]) =>
        act(async () => {
          for (const n of names) {
            await ctx
              .client()
              .json({ method: 'DELETE', path: `/cnm/namespaces/${encodeURIComponent(n)}` });
            ctx.out.write(`namespace "${n}" deleted\n`);
          }
        }),
      ),
  );
  return cmd;
}

/** Builds `cnm label CONTAINER k=v k-`. */
export function labelCommand(ctx: CliContext, act: Act): Command {
  return new Command('label')
    .description("Set (k=v) or remove (k-) a container's labels; policies follow at once")
    .argument('<container>')
    .argument('<labels...>')
    .action((container: string, labels: string[]) =>
      act(async () => {
        await ctx.client().json({
          method: 'POST',
          path: `/cnm/containers/${encodeURIComponent(container)}/labels`,
          body: parseLabelArgs(labels),
        });
        ctx.out.write(`${container}\n`);
      }),
    );
}
