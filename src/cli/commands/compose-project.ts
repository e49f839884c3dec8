/**
 * Finding and loading the Compose file for `cnm compose up|down|ps`: `-f`, else the default file
 * names in the working directory; notices go to stderr, file errors become `CliError`s.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { CliError } from '../client.js';
import { ComposeError, loadCompose, projectNameOf, type ComposeProject } from '../compose/model.js';
import type { CliContext } from '../context.js';

/** Options of `compose` itself, shared by the subcommands. */
export interface ComposeGlobalOptions {
  file?: string;
  projectName?: string;
}

/** File names `docker compose` looks for, in order, when `-f` is not given. */
export const DEFAULT_FILES = [
  'compose.yaml',
  'compose.yml',
  'docker-compose.yaml',
  'docker-compose.yml',
];

/** A loaded project and where it came from. */
export interface LoadedProject {
  project: ComposeProject;
  configFile: string;
  workingDir: string;
}

async function readIfExists(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`Cannot read compose file "${file}": ${(err as Error).message}`);
  }
}

/**
 * Finds and loads the Compose file (`-f`, else the default names in the working directory).
 * Returns `undefined` when no `-f` was given and no default file exists and `optional` is set
 * (`down -p x` and `ps -p x` work without the file, from the labels).
 * @throws CliError for a missing `-f` file or an invalid file; notices go to stderr
 */
export async function loadProject(
  ctx: CliContext,
  o: ComposeGlobalOptions,
  optional = false,
): Promise<LoadedProject | undefined> {
  const cwd = process.cwd();
  let file: string | undefined;
  let text: string | undefined;
  if (o.file !== undefined) {
    file = path.resolve(cwd, o.file);
    text = await readIfExists(file);
    if (text === undefined) throw new CliError(`open ${file}: no such file or directory`);
  } else {
    for (const name of DEFAULT_FILES) {
      text = await readIfExists(path.join(cwd, name));
      if (text !== undefined) {
        file = path.join(cwd, name);
        break;
      }
    }
    if (file === undefined || text === undefined) {
      if (optional) return undefined;
      throw new CliError('no configuration file provided: not found');
    }
  }
  const workingDir = path.dirname(file);
  try {
    const project = loadCompose(text, {
      projectDir: workingDir,
      env: ctx.env,
      fileName: path.relative(cwd, file) || file,
      ...(o.projectName === undefined ? {} : { projectName: o.projectName }),
    });
    for (const n of project.notices) ctx.err.write(`WARN ${n}\n`);
    return { project, configFile: file, workingDir };
  } catch (err) {
    if (err instanceof ComposeError) throw new CliError(err.message);
    throw err;
  }
}

/**
 * The project name for `down`/`ps`: from the file when there is one, else `-p` (or
 * `COMPOSE_PROJECT_NAME`).
 * @throws CliError when neither names a project
 */
export async function projectOf(
  ctx: CliContext,
  o: ComposeGlobalOptions,
): Promise<{ name: string; loaded?: LoadedProject }> {
  const loaded = await loadProject(ctx, o, o.projectName !== undefined || o.file === undefined);
  if (loaded !== undefined) return { name: loaded.project.name, loaded };
  const explicit = o.projectName ?? ctx.env['COMPOSE_PROJECT_NAME'];
  if (explicit === undefined || explicit === '') {
    throw new CliError('no configuration file provided: not found');
  }
  try {
    return { name: projectNameOf(explicit, process.cwd()) };
  } catch (err) {
    if (err instanceof ComposeError) throw new CliError(err.message);
    throw err;
  }
}
