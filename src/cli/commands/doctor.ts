/**
 * `cnm doctor`: prints the daemon's host report (`GET /cnm/doctor`) — kernel features, host
 * tuning with advice, NIC queues — and exits 1 when a feature the current configuration needs
 * is missing.
 */
import { Command } from 'commander';
import type { Act, CliContext } from '../context.js';

/** The report as the daemon sends it (see `src/api/routes/doctor.ts`). */
interface DoctorBody {
  features: { name: string; label: string; present: boolean | null; detail: string }[];
  missing: { by: string; feature: string; label: string }[];
  tuning: {
    sysctls: { key: string; value?: string; want: string; ok: boolean; advice: string }[];
    nics: {
      name: string;
      rxQueues: number;
      txQueues: number;
      irqs: { irq: number; name: string; affinity: string }[];
    }[];
  };
  ok: boolean;
}

function mark(present: boolean | null): string {
  return present === true ? 'yes' : present === false ? 'no' : '?';
}

/** The text `cnm doctor` prints for a report. */
export function doctorText(r: DoctorBody): string {
  const lines = ['Kernel features (probed at daemon start):'];
  const width = Math.max(...r.features.map((f) => f.name.length));
  for (const f of r.features) {
    const note = f.present === true ? '' : `  (${f.detail})`;
    lines.push(`  ${f.name.padEnd(width)}  ${mark(f.present).padEnd(3)}${note}`);
  }
  lines.push('', "Host tuning (daemon's namespace):");
  const kw = Math.max(...r.tuning.sysctls.map((s) => s.key.length));
  for (const s of r.tuning.sysctls) {
    const value = s.value ?? '(not visible)';
    lines.push(`  ${s.key.padEnd(kw)}  ${value}${s.ok ? '' : `  -> want ${s.want}`}`);
    if (s.advice) lines.push(`  ${''.padEnd(kw)}  ${s.advice}`);
  }
  lines.push('', 'NICs:');
  if (r.tuning.nics.length === 0) lines.push("  none visible in the daemon's namespace");
  for (const n of r.tuning.nics) {
    lines.push(`  ${n.name}: ${n.rxQueues} rx / ${n.txQueues} tx queues`);
    for (const i of n.irqs) lines.push(`    irq ${i.irq} ${i.name}: cpus ${i.affinity}`);
  }
  lines.push('');
  if (r.missing.length === 0) {
    lines.push('OK: every kernel feature the configuration needs is present');
  } else {
    for (const m of r.missing) lines.push(`MISSING: ${m.by} needs the kernel's ${m.label}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Builds the `doctor` command. */
export function doctorCommand(ctx: CliContext, act: Act): Command {
  return new Command('doctor')
    .description("Check the daemon's host: kernel features, tuning, NIC queues")
    .option('--json', 'print the report as JSON')
    .action((o: { json?: boolean }) =>
      act(async () => {
        const r = await ctx.client().json<DoctorBody>({ method: 'GET', path: '/cnm/doctor' });
        ctx.out.write(o.json ? `${JSON.stringify(r, null, 2)}\n` : doctorText(r));
        return r.ok ? 0 : 1;
      }),
    );
}
