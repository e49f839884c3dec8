/**
 * `cnm policy apply|ls|inspect|rm`: Kubernetes NetworkPolicies, as `kubectl` takes and prints
 * them. `apply -f` reads YAML or JSON (many documents) and sends them as one `List`, so a file
 * of ten thousand policies is one request and one kernel transaction.
 */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { inspectJson } from '../format.js';
import { renderList } from '../template.js';

interface WirePolicy {
  Namespace: string;
  Name: string;
  Created: string;
  Updated: string;
  Selected: string[];
  Policy: { spec: { podSelector: unknown; policyTypes?: string[]; egress?: unknown[] } };
}

/**
 * The documents of a policy file as one `List` body.
 * @throws CliError when the text is not YAML or JSON
 */
export function policyApplyRequest(text: string, namespace?: string): ApiRequest {
  const items: unknown[] = [];
  for (const d of parseAllDocuments(text)) {
    if (d.errors.length > 0) throw new CliError(`error: ${d.errors[0]!.message}`);
    const v: unknown = d.toJS();
    if (v === null || v === undefined) continue;
    const kind = (v as { kind?: unknown }).kind;
    if (kind === 'List' || kind === 'NetworkPolicyList') {
      items.push(...(((v as { items?: unknown[] }).items ?? []) as unknown[]));
    } else items.push(v);
  }
  return {
    method: 'POST',
    path: '/cnm/policies',
    query: { namespace },
    body: { apiVersion: 'v1', kind: 'List', items },
  };
}

async function readInput(ctx: CliContext, file: string): Promise<string> {
  if (file !== '-') return readFile(file, 'utf8');
  const chunks: Buffer[] = [];
  for await (const c of ctx.stdin) chunks.push(Buffer.from(c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** `ns/name` or `name` (with `-n`) → namespace and name. */
export function policyRef(ref: string, namespace: string | undefined): [string, string] {
  const slash = ref.indexOf('/');
  if (slash > 0) return [ref.slice(0, slash), ref.slice(slash + 1)];
  return [namespace ?? 'default', ref];
}

function policyPath(ns: string, name: string): string {
  return `/cnm/policies/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
}

function selectorText(sel: unknown): string {
  const s = (sel ?? {}) as { matchLabels?: Record<string, string>; matchExpressions?: unknown[] };
  const parts = Object.entries(s.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  if ((s.matchExpressions ?? []).length > 0) parts.push(`+${s.matchExpressions!.length} expr`);
  return parts.length > 0 ? parts.join(',') : '<none>';
}

/** Renders `policy ls` as kubectl's table. */
export function renderPolicyList(list: WirePolicy[], format?: string): string {
  const rows = list.map((p) => ({
    Namespace: p.Namespace,
    Name: p.Name,
    PodSelector: selectorText(p.Policy.spec.podSelector),
    Types:
      p.Policy.spec.policyTypes?.join(',') ??
      ((p.Policy.spec.egress?.length ?? 0) > 0 ? 'Ingress,Egress' : 'Ingress'),
    Selected: String(p.Selected.length),
  }));
  return renderList(
    format ?? 'table {{.Namespace}}\t{{.Name}}\t{{.PodSelector}}\t{{.Types}}\t{{.Selected}}',
    rows,
    {
      Namespace: 'NAMESPACE',
      Name: 'NAME',
      PodSelector: 'POD-SELECTOR',
      Types: 'POLICY-TYPES',
      Selected: 'SELECTED',
    },
  );
}

/** Builds the `policy` command group. */
export function policyCommand(ctx: CliContext, act: Act): Command {
  const cmd = new Command('policy').description(
    'Manage network policies (Kubernetes NetworkPolicy)',
  );
  cmd.addCommand(
    new Command('apply')
      .description('Create or update policies from a YAML or JSON file ("-" for stdin)')
      .requiredOption('-f, --filename <file>', 'file with NetworkPolicy documents')
      .option('-n, --namespace <ns>', 'namespace of policies that name none')
      .action((o: { filename: string; namespace?: string }) =>
        act(async () => {
          const req = policyApplyRequest(await readInput(ctx, o.filename), o.namespace);
          const res = await ctx
            .client()
            .json<{ Namespace: string; Name: string; Result: string }[]>(req);
          for (const r of res)
            ctx.out.write(`networkpolicy.networking.k8s.io/${r.Name} ${r.Result}\n`);
        }),
      ),
  );
  cmd.addCommand(
    new Command('ls')
      .alias('list')
      .description('List policies')
      .option('-n, --namespace <ns>', 'only this namespace')
      .option('--format <template>', 'format output using a Go template')
      .action((o: { namespace?: string; format?: string }) =>
        act(async () => {
          const list = await ctx.client().json<WirePolicy[]>({
            method: 'GET',
            path: '/cnm/policies',
            query: { namespace: o.namespace },
          });
          ctx.out.write(renderPolicyList(list, o.format));
        }),
      ),
  );
  cmd.addCommand(
    new Command('inspect')
      .description('Show policies (NAMESPACE/NAME or NAME with -n)')
      .argument('<policy...>')
      .option('-n, --namespace <ns>', 'namespace of names without one')
      .action((refs: string[], o: { namespace?: string }) =>
        act(async () => {
          const out: unknown[] = [];
          for (const ref of refs) {
            const [ns, name] = policyRef(ref, o.namespace);
            out.push(await ctx.client().json({ method: 'GET', path: policyPath(ns, name) }));
          }
          ctx.out.write(inspectJson(out));
        }),
      ),
  );
  cmd.addCommand(
    new Command('rm')
      .alias('remove')
      .description('Remove policies (NAMESPACE/NAME or NAME with -n)')
      .argument('<policy...>')
      .option('-n, --namespace <ns>', 'namespace of names without one')
      .action((refs: string[], o: { namespace?: string }) =>
        act(async () => {
          let code = 0;
          for (const ref of refs) {
            const [ns, name] = policyRef(ref, o.namespace);
            try {
              await ctx.client().json({ method: 'DELETE', path: policyPath(ns, name) });
              ctx.out.write(`networkpolicy.networking.k8s.io "${name}" deleted\n`);
            } catch (err) {
              if (!(err instanceof CliError)) throw err;
              ctx.err.write(`${err.message}\n`);
              code = 1;
            }
          }
          return code;
        }),
      ),
  );
  return cmd;
}
