/**
 * `cnm bench`: measures the data path of each mode on this machine (latency, throughput,
 * connection rate, packet rate) against a hand-built kernel ceiling, with throwaway containers
 * and networks made through the daemon's API. Must run as root on the daemon's host (the
 * ceiling's namespaces are built client-side); see docs/bench.md.
 */
import { Command } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Act, CliContext } from '../context.js';
import { METRICS, parseBenchOptions, type RawBenchOptions } from '../bench/model.js';
import { chartFile, renderMarkdown, renderSvg, renderTable } from '../bench/render.js';
import { runBench, type Progress } from '../bench/runner.js';

/** Parsed flags of `bench`. */
interface BenchFlags extends RawBenchOptions {
  json?: boolean;
  out?: string;
}

/** Progress on stderr: one rewritten line on a terminal, one line per step otherwise. */
export function stderrProgress(err: NodeJS.WritableStream & { isTTY?: boolean }): Progress & {
  end(): void;
} {
  const tty = err.isTTY === true;
  let open = false;
  return {
    step(done, total, what) {
      const text = `[${String(done).padStart(String(total).length)}/${total}] ${what}`;
      if (tty) {
        err.write(`\r\x1b[K${text}`);
        open = true;
      } else err.write(`${text}\n`);
    },
    note(line) {
      if (open) err.write('\r\x1b[K');
      open = false;
      err.write(`${line}\n`);
    },
    end() {
      if (open) err.write('\n');
      open = false;
    },
  };
}

/** Builds the `bench` command. */
export function benchCommand(ctx: CliContext, act: Act): Command {
  return new Command('bench')
    .description(
      "Measure each network mode's data path against a hand-built kernel ceiling (root, on the daemon's host)",
    )
    .option(
      '--modes <list>',
      'comma-separated: host,bridge,bridge-published,macvlan,overlay (default: all)',
    )
    .option('--duration <seconds>', 'seconds per measurement', '5')
    .option('--repeat <n>', 'repetitions per figure (median, min, max)', '3')
    .option('--udp-rate <rate>', "iperf3's -b cap for the 64-byte UDP test", '1G')
    .option('--json', 'print the report as JSON')
    .option('--out <dir>', 'write report.json, report.md and one SVG chart per metric to DIR')
    .action((o: BenchFlags) =>
      act(async () => {
        const settings = parseBenchOptions(o);
        const controller = new AbortController();
        let interrupts = 0;
        const onSignal = (sig: NodeJS.Signals): void => {
          interrupts += 1;
          if (interrupts === 1) {
            ctx.err.write(`\n${sig}: stopping, removing the bench objects (again to quit now)\n`);
            controller.abort(new Error(`Interrupted by ${sig}`));
          } else {
            process.exit(130);
          }
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
        const progress = stderrProgress(ctx.err);
        try {
          const command = [
            'cnm bench',
            `--modes ${settings.modes.join(',')}`,
            `--duration ${settings.durationSec}`,
            `--repeat ${settings.repeat}`,
            ...(settings.udpRate !== '1G' ? [`--udp-rate ${settings.udpRate}`] : []),
          ].join(' ');
          const { report, cleanupErrors } = await runBench({
            client: ctx.client(),
            settings,
            signal: controller.signal,
            progress,
            command,
          });
          progress.end();
          for (const e of cleanupErrors) ctx.err.write(`${e}\n`);
          if (report === undefined) {
            ctx.err.write(
              cleanupErrors.length === 0
                ? 'Interrupted: every bench container, network and namespace was removed\n'
                : 'Interrupted: some bench objects could not be removed (above)\n',
            );
            return 130;
          }
          if (o.out !== undefined) {
            await mkdir(o.out, { recursive: true });
            await writeFile(
              path.join(o.out, 'report.json'),
              `${JSON.stringify(report, null, 2)}\n`,
            );
            await writeFile(
              path.join(o.out, 'report.md'),
              renderMarkdown(report, { charts: true }),
            );
            for (const def of METRICS) {
              await writeFile(path.join(o.out, chartFile(def)), renderSvg(report, def));
            }
            ctx.err.write(`Wrote ${path.join(o.out, 'report.md')}, report.json and charts\n`);
          }
          ctx.out.write(o.json ? `${JSON.stringify(report, null, 2)}\n` : renderTable(report));
          return cleanupErrors.length === 0 ? 0 : 1;
        } finally {
          progress.end();
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
      }),
    );
}
