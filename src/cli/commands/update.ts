/**
 * `cnm update`: changes running (or stopped) containers' bandwidth limits, as `docker update`
 * changes resources. A rate of `0` or `none` removes that limit; a flag not given leaves it.
 */
import { Command } from 'commander';
import type { ApiRequest } from '../client.js';
import { CliError } from '../client.js';
import type { Act, CliContext } from '../context.js';
import { eachName } from './each.js';

/** Flags of `update`. */
export interface UpdateOptions {
  ingressRate?: string;
  egressRate?: string;
}

/**
 * The `POST /cnm/containers/{id}/update` request for one name.
 * @throws CliError when no flag is given (nothing to update)
 */
export function updateRequest(name: string, o: UpdateOptions): ApiRequest {
  if (o.ingressRate === undefined && o.egressRate === undefined) {
    throw new CliError('"cnm update" requires --ingress-rate or --egress-rate');
  }
  const body: Record<string, string> = {};
  if (o.ingressRate !== undefined) body['IngressRate'] = o.ingressRate;
  if (o.egressRate !== undefined) body['EgressRate'] = o.egressRate;
  return { method: 'POST', path: `/cnm/containers/${encodeURIComponent(name)}/update`, body };
}

/** Builds the `update` command. */
export function updateCommand(ctx: CliContext, act: Act): Command {
  return new Command('update')
    .description("Update one or more containers' bandwidth limits")
    .argument('<container...>')
    .option(
      '--ingress-rate <rate>',
      'limit toward the container (tc units: 10mbit; none removes it)',
    )
    .option('--egress-rate <rate>', 'limit of what the container sends (none removes it)')
    .action((names: string[], o: UpdateOptions) =>
      act(() => {
        updateRequest('', o);
        return eachName(ctx, names, (n) => updateRequest(n, o));
      }),
    );
}
