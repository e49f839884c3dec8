/**
 * A small Go `text/template` evaluator for `--format`, covering what docker users write: field
 * chains, variables, pipelines, `if`/`else`/`range`/`with`, parenthesised calls, and the docker
 * CLI's functions (`json`, `join`, `split`, `lower`, `upper`, `title`, `pad`, `truncate`) plus
 * Go's builtins (`index`, `len`, `print`, `printf`, `println`, `not`, `and`, `or`, `eq`, `ne`,
 * `lt`, `le`, `gt`, `ge`). Data is JSON-shaped, read like Go reads `map[string]interface{}`: a
 * missing key prints `<no value>`. Pure: no I/O.
 */

/** A template syntax or evaluation error. */
export class TemplateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TemplateError';
  }
}

type Tok =
  | { k: 'field'; path: string[]; space: boolean }
  | { k: 'var'; name: string; path: string[]; space: boolean }
  | { k: 'lit'; v: unknown; space: boolean }
  | { k: 'ident'; name: string; space: boolean }
  | { k: 'lparen' | 'rparen' | 'pipe' | 'declare' | 'assign' | 'comma'; space: boolean };

type Operand =
  | { k: 'field'; path: string[] }
  | { k: 'var'; name: string; path: string[] }
  | { k: 'lit'; v: unknown }
  | { k: 'fn'; name: string }
  | { k: 'sub'; pipe: Pipe; path: string[] };

interface Pipe {
  vars: string[];
  declare: boolean;
  cmds: Operand[][];
}

type Node =
  | { t: 'text'; s: string }
  | { t: 'action'; pipe: Pipe }
  | { t: 'if' | 'range' | 'with'; pipe: Pipe; then: Node[]; else: Node[] | null };

const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with']);

function lexAction(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  const readPath = (): string[] => {
    const path: string[] = [];
    while (src[i] === '.') {
      i++;
      const m = /^[A-Za-z0-9_]*/.exec(src.slice(i));
      const name = m?.[0] ?? '';
      if (name === '') break;
      path.push(name);
      i += name.length;
    }
    return path;
  };
  while (i < src.length) {
    const start = i;
    while (i < src.length && /\s/.test(src[i] ?? '')) i++;
    const space = i > start || toks.length === 0;
    if (i >= src.length) break;
    const c = src[i] ?? '';
    if (c === '.') {
      toks.push({ k: 'field', path: readPath(), space });
    } else if (c === '$') {
      const m = /^\$[A-Za-z0-9_]*/.exec(src.slice(i));
      const name = m?.[0] ?? '$';
      i += name.length;
      toks.push({ k: 'var', name, path: readPath(), space });
    } else if (c === '"') {
      let j = i + 1;
      while (j < src.length && src[j] !== '"') j += src[j] === '\\' ? 2 : 1;
      if (j >= src.length) throw new TemplateError('unterminated quoted string');
      toks.push({ k: 'lit', v: JSON.parse(src.slice(i, j + 1)) as string, space });
      i = j + 1;
    } else if (c === '`') {
      const j = src.indexOf('`', i + 1);
      if (j < 0) throw new TemplateError('unterminated raw quoted string');
      toks.push({ k: 'lit', v: src.slice(i + 1, j), space });
      i = j + 1;
    } else if (/[-+0-9]/.test(c)) {
      const m = /^[-+]?\d+(\.\d+)?/.exec(src.slice(i));
      if (m === null) throw new TemplateError(`bad number syntax at "${src.slice(i)}"`);
      toks.push({ k: 'lit', v: Number(m[0]), space });
      i += m[0].length;
    } else if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i));
      const name = m?.[0] ?? '';
      i += name.length;
      if (name === 'true' || name === 'false') toks.push({ k: 'lit', v: name === 'true', space });
      else if (name === 'nil') toks.push({ k: 'lit', v: null, space });
      else toks.push({ k: 'ident', name, space });
    } else if (c === '(' || c === ')' || c === '|' || c === ',' || c === '=') {
      const k = (
        { '(': 'lparen', ')': 'rparen', '|': 'pipe', ',': 'comma', '=': 'assign' } as const
      )[c];
      toks.push({ k, space });
      i++;
    } else if (src.startsWith(':=', i)) {
      toks.push({ k: 'declare', space });
      i += 2;
    } else {
      throw new TemplateError(`unexpected "${c}" in command`);
    }
  }
  return toks;
}

class PipeParser {
  #toks: Tok[];
  #i = 0;
  constructor(toks: Tok[]) {
    this.#toks = toks;
  }
  done(): boolean {
    return this.#i >= this.#toks.length;
  }
  pipe(stopAtParen: boolean): Pipe {
    const pipe: Pipe = { vars: [], declare: false, cmds: [] };
    // Variable declaration: `$x :=`, `$k, $v :=`, or assignment `$x =`.
    const save = this.#i;
    const vars: string[] = [];
    for (;;) {
      const t = this.#toks[this.#i];
      if (t?.k !== 'var' || t.path.length > 0) break;
      vars.push(t.name);
      this.#i++;
      if (this.#toks[this.#i]?.k === 'comma') this.#i++;
      else break;
    }
    const op = this.#toks[this.#i];
    if (vars.length > 0 && (op?.k === 'declare' || op?.k === 'assign')) {
      pipe.vars = vars;
      pipe.declare = op.k === 'declare';
      this.#i++;
    } else {
      this.#i = save;
    }
    let cmd: Operand[] = [];
    for (;;) {
      const t = this.#toks[this.#i];
      if (t === undefined || (t.k === 'rparen' && stopAtParen)) break;
      if (t.k === 'pipe') {
        if (cmd.length === 0) throw new TemplateError('missing command before "|"');
        pipe.cmds.push(cmd);
        cmd = [];
        this.#i++;
        continue;
      }
      cmd.push(this.#operand());
    }
    if (cmd.length === 0) throw new TemplateError('missing value for command');
    pipe.cmds.push(cmd);
    return pipe;
  }
  #operand(): Operand {
    const t = this.#toks[this.#i++];
    if (t === undefined) throw new TemplateError('unexpected end of command');
    switch (t.k) {
      case 'field':
        return { k: 'field', path: t.path };
      case 'var':
        return { k: 'var', name: t.name, path: t.path };
      case 'lit':
        return { k: 'lit', v: t.v };
      case 'ident':
        if (KEYWORDS.has(t.name)) throw new TemplateError(`unexpected keyword "${t.name}"`);
        if (!(t.name in FUNCS)) throw new TemplateError(`function "${t.name}" not defined`);
        return { k: 'fn', name: t.name };
      case 'lparen': {
        const pipe = this.pipe(true);
        if (this.#toks[this.#i]?.k !== 'rparen') throw new TemplateError('unclosed left paren');
        this.#i++;
        const next = this.#toks[this.#i];
        let path: string[] = [];
        if (next?.k === 'field' && !next.space) {
          path = next.path;
          this.#i++;
        }
        return { k: 'sub', pipe, path };
      }
      default:
        throw new TemplateError(`unexpected "${t.k}" in operand`);
    }
  }
}

function parsePipe(toks: Tok[]): Pipe {
  const p = new PipeParser(toks);
  const pipe = p.pipe(false);
  if (!p.done()) throw new TemplateError('unexpected ")" in command');
  return pipe;
}

function splitTemplate(src: string): ({ t: 'text'; s: string } | { t: 'act'; s: string })[] {
  const out: ({ t: 'text'; s: string } | { t: 'act'; s: string })[] = [];
  let i = 0;
  let trimNext = false;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    let text = open < 0 ? src.slice(i) : src.slice(i, open);
    if (trimNext) text = text.replace(/^\s+/, '');
    trimNext = false;
    if (open < 0) {
      out.push({ t: 'text', s: text });
      break;
    }
    let inner = open + 2;
    if (
      src.startsWith('- ', inner) ||
      src.startsWith('-\t', inner) ||
      src.startsWith('-\n', inner)
    ) {
      text = text.replace(/\s+$/, '');
      inner += 1;
    }
    out.push({ t: 'text', s: text });
    // Find the closing braces outside string literals.
    let j = inner;
    let quote: string | undefined;
    for (; j < src.length; j++) {
      const c = src[j];
      if (quote !== undefined) {
        if (c === '\\' && quote === '"') j++;
        else if (c === quote) quote = undefined;
      } else if (c === '"' || c === '`') quote = c;
      else if (src.startsWith('}}', j)) break;
    }
    if (j >= src.length) throw new TemplateError('unclosed action');
    let body = src.slice(inner, j);
    if (/\s-$/.test(body)) {
      body = body.slice(0, -1);
      trimNext = true;
    }
    out.push({ t: 'act', s: body.trim() });
    i = j + 2;
  }
  return out.filter((p) => p.t === 'act' || p.s !== '');
}

function parseNodes(src: string): Node[] {
  const parts = splitTemplate(src);
  let pos = 0;
  const parseList = (): { nodes: Node[]; end: 'end' | 'else' | 'eof'; rest: string } => {
    const nodes: Node[] = [];
    while (pos < parts.length) {
      const p = parts[pos++];
      if (p === undefined) break;
      if (p.t === 'text') {
        nodes.push({ t: 'text', s: p.s });
        continue;
      }
      if (p.s.startsWith('/*')) {
        if (!p.s.endsWith('*/')) throw new TemplateError('unclosed comment');
        continue;
      }
      const word = /^[a-z]+\b/.exec(p.s)?.[0];
      if (word === 'end') return { nodes, end: 'end', rest: '' };
      if (word === 'else') return { nodes, end: 'else', rest: p.s.slice(4).trim() };
      if (word === 'if' || word === 'range' || word === 'with') {
        nodes.push(parseBlock(word, p.s.slice(word.length).trim()));
        continue;
      }
      nodes.push({ t: 'action', pipe: parsePipe(lexAction(p.s)) });
    }
    return { nodes, end: 'eof', rest: '' };
  };
  const parseBlock = (kind: 'if' | 'range' | 'with', head: string): Node => {
    if (head === '') throw new TemplateError(`missing value for ${kind}`);
    const pipe = parsePipe(lexAction(head));
    const body = parseList();
    if (body.end === 'eof') throw new TemplateError(`unexpected EOF: missing {{end}} for ${kind}`);
    let elseNodes: Node[] | null = null;
    if (body.end === 'else') {
      const chained = /^(if|with)\b/.exec(body.rest)?.[1] as 'if' | 'with' | undefined;
      if (chained !== undefined) {
        // `{{else if x}}` is `{{else}}{{if x}}…{{end}}` sharing the outer {{end}}.
        elseNodes = [parseBlock(chained, body.rest.slice(chained.length).trim())];
      } else {
        const alt = parseList();
        if (alt.end !== 'end') throw new TemplateError(`missing {{end}} for ${kind}`);
        elseNodes = alt.nodes;
      }
    }
    return { t: kind, pipe, then: body.nodes, else: elseNodes };
  };
  const top = parseList();
  if (top.end !== 'eof') throw new TemplateError(`unexpected {{${top.end}}}`);
  return top.nodes;
}

/** Go's truthiness: false, 0, nil, and empty strings, arrays and maps are false. */
export function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Prints a value the way Go's `fmt.Print` prints decoded JSON. */
export function goString(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (Array.isArray(v)) return `[${v.map(goString).join(' ')}]`;
  if (typeof v === 'object') {
    const keys = Object.keys(v).sort();
    return `map[${keys.map((k) => `${k}:${goString((v as Record<string, unknown>)[k])}`).join(' ')}]`;
  }
  return String(v);
}

function field(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const name of path) {
    if (cur === null || cur === undefined || typeof cur !== 'object' || Array.isArray(cur)) {
      if (cur === undefined || cur === null) return undefined;
      throw new TemplateError(
        `can't evaluate field ${name} in type ${Array.isArray(cur) ? 'array' : typeof cur}`,
      );
    }
    cur = (cur as Record<string, unknown>)[name];
  }
  return cur;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new TemplateError('incompatible types for comparison');
}

function sprintf(format: string, args: unknown[]): string {
  let n = 0;
  return format.replace(/%([-+ 0#]*\d*)([svdqtf%])/g, (_m, _flags: string, verb: string) => {
    if (verb === '%') return '%';
    const a = args[n++];
    if (verb === 'q') return JSON.stringify(typeof a === 'string' ? a : goString(a));
    if (verb === 'd') return typeof a === 'number' ? String(Math.trunc(a)) : goString(a);
    return goString(a);
  });
}

const FUNCS: Record<string, (...args: unknown[]) => unknown> = {
  json: (v) => JSON.stringify(v === undefined ? null : v),
  join: (list, sep) =>
    Array.isArray(list) ? list.map(goString).join(String(sep)) : goString(list),
  split: (s, sep) => String(s).split(String(sep)),
  lower: (s) => String(s).toLowerCase(),
  upper: (s) => String(s).toUpperCase(),
  title: (s) => String(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  pad: (s, l, r) => `${' '.repeat(Number(l))}${goString(s)}${' '.repeat(Number(r))}`,
  truncate: (s, n) => [...goString(s)].slice(0, Number(n)).join(''),
  index: (v, ...keys) => {
    let cur = v;
    for (const k of keys) {
      if (cur === null || cur === undefined) throw new TemplateError('index of untyped nil');
      if (Array.isArray(cur)) {
        const i = Number(k);
        if (!Number.isInteger(i) || i < 0 || i >= cur.length) {
          throw new TemplateError(`error calling index: index out of range: ${String(k)}`);
        }
        cur = cur[i];
      } else if (typeof cur === 'object') {
        cur = (cur as Record<string, unknown>)[String(k)];
      } else {
        throw new TemplateError(`can't index item of type ${typeof cur}`);
      }
    }
    return cur;
  },
  len: (v) => {
    if (typeof v === 'string' || Array.isArray(v)) return v.length;
    if (typeof v === 'object' && v !== null) return Object.keys(v).length;
    throw new TemplateError(`error calling len: len of type ${typeof v}`);
  },
  print: (...a) => a.map(goString).join(''),
  printf: (f, ...a) => sprintf(String(f), a),
  println: (...a) => `${a.map(goString).join(' ')}\n`,
  not: (v) => !truthy(v),
  and: (...a) => a.find((v) => !truthy(v)) ?? a.at(-1),
  or: (...a) => a.find((v) => truthy(v)) ?? a.at(-1),
  eq: (a, ...bs) => bs.some((b) => a === b),
  ne: (a, b) => a !== b,
  lt: (a, b) => compare(a, b) < 0,
  le: (a, b) => compare(a, b) <= 0,
  gt: (a, b) => compare(a, b) > 0,
  ge: (a, b) => compare(a, b) >= 0,
};

type Scope = Map<string, unknown>[];

function lookupVar(scope: Scope, name: string): unknown {
  for (let i = scope.length - 1; i >= 0; i--) {
    const frame = scope[i];
    if (frame?.has(name)) return frame.get(name);
  }
  throw new TemplateError(`undefined variable "${name}"`);
}

function evalOperand(op: Operand, dot: unknown, scope: Scope): unknown {
  switch (op.k) {
    case 'field':
      return field(dot, op.path);
    case 'var':
      return field(lookupVar(scope, op.name), op.path);
    case 'lit':
      return op.v;
    case 'fn':
      return FUNCS[op.name]?.();
    case 'sub':
      return field(evalPipe(op.pipe, dot, scope), op.path);
  }
}

function evalPipe(pipe: Pipe, dot: unknown, scope: Scope): unknown {
  let value: unknown;
  let piped = false;
  for (const cmd of pipe.cmds) {
    const [head, ...rest] = cmd;
    if (head === undefined) continue;
    if (head.k === 'fn') {
      const args = rest.map((a) => evalOperand(a, dot, scope));
      if (piped) args.push(value);
      const fn = FUNCS[head.name];
      if (fn === undefined) throw new TemplateError(`function "${head.name}" not defined`);
      value = fn(...args);
    } else {
      if (rest.length > 0 || piped) throw new TemplateError("can't give argument to non-function");
      value = evalOperand(head, dot, scope);
    }
    piped = true;
  }
  if (pipe.vars.length > 0 && !pipe.declare) {
    for (let i = scope.length - 1; i >= 0; i--) {
      const frame = scope[i];
      const name = pipe.vars[0] ?? '';
      if (frame?.has(name)) {
        frame.set(name, value);
        break;
      }
    }
  }
  return value;
}

function run(nodes: Node[], dot: unknown, scope: Scope, out: string[]): void {
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        out.push(n.s);
        break;
      case 'action': {
        const v = evalPipe(n.pipe, dot, scope);
        if (n.pipe.vars.length === 0) out.push(goString(v));
        else if (n.pipe.declare) scope[scope.length - 1]?.set(n.pipe.vars[0] ?? '', v);
        break;
      }
      case 'if':
      case 'with': {
        scope.push(new Map());
        const v = evalPipe(n.pipe, dot, scope);
        if (n.pipe.declare) scope[scope.length - 1]?.set(n.pipe.vars[0] ?? '', v);
        if (truthy(v)) run(n.then, n.t === 'with' ? v : dot, scope, out);
        else if (n.else !== null) run(n.else, dot, scope, out);
        scope.pop();
        break;
      }
      case 'range': {
        const v = evalPipe({ ...n.pipe, vars: [] }, dot, scope);
        let entries: [unknown, unknown][] = [];
        if (Array.isArray(v)) entries = v.map((e, i) => [i, e]);
        else if (typeof v === 'object' && v !== null) {
          // Go ranges over maps in sorted key order.
          entries = Object.keys(v)
            .sort()
            .map((k) => [k, (v as Record<string, unknown>)[k]]);
        } else if (typeof v === 'number') entries = Array.from({ length: v }, (_, i) => [i, i]);
        else if (v !== undefined && v !== null)
          throw new TemplateError(`range can't iterate over ${goString(v)}`);
        if (entries.length === 0) {
          if (n.else !== null) run(n.else, dot, scope, out);
          break;
        }
        for (const [k, e] of entries) {
          const frame = new Map<string, unknown>();
          if (n.pipe.vars.length === 1) frame.set(n.pipe.vars[0] ?? '', e);
          if (n.pipe.vars.length >= 2) {
            frame.set(n.pipe.vars[0] ?? '', k);
            frame.set(n.pipe.vars[1] ?? '', e);
          }
          scope.push(frame);
          run(n.then, e, scope, out);
          scope.pop();
        }
        break;
      }
    }
  }
}

/** A parsed template, executable against any number of values. */
export class Template {
  readonly #nodes: Node[];

  private constructor(nodes: Node[]) {
    this.#nodes = nodes;
  }

  /**
   * Parses Go template text.
   * @throws TemplateError on a syntax error or an unknown function
   * @example Template.parse('{{range .IPAM.Config}}{{.Subnet}}{{end}}')
   */
  static parse(src: string): Template {
    return new Template(parseNodes(src));
  }

  /**
   * Renders the template with `data` as `.` and `$`.
   * @throws TemplateError on an evaluation error (bad index, comparing unlike types)
   */
  execute(data: unknown): string {
    const out: string[] = [];
    run(this.#nodes, data, [new Map([['$', data]])], out);
    return out.join('');
  }
}

/**
 * Aligns tab-separated cells into columns like the docker CLI's tabwriter (min width 10,
 * padding 3); the last cell of a line is not padded.
 */
export function alignColumns(lines: string[]): string {
  const rows = lines.map((l) => l.split('\t'));
  const widths: number[] = [];
  for (const row of rows) {
    row.slice(0, -1).forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, [...cell].length);
    });
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) =>
          i === row.length - 1 ? cell : cell.padEnd(Math.max(10, (widths[i] ?? 0) + 3)),
        )
        .join('')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * Renders a list `--format` as the docker CLI does: `\t` and `\n` escapes become real tabs and
 * newlines; a `table` prefix adds a header row (each field shows `headers[field]`, else its name
 * upper-cased) and aligns the columns. Each item gives one line.
 * @example renderList('table {{.ID}}\t{{.Name}}', rows, { ID: 'NETWORK ID', Name: 'NAME' })
 */
export function renderList(
  format: string,
  items: unknown[],
  headers: Record<string, string>,
): string {
  const isTable = format.startsWith('table');
  let body = isTable ? format.slice('table'.length) : format;
  body = body.trim().replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  const tpl = Template.parse(body);
  const lines = items.map((item) => tpl.execute(item));
  if (!isTable) return lines.map((l) => `${l}\n`).join('');
  // The header is the same template run against a value whose every field is its header text.
  const headerData = new Proxy(
    {},
    {
      get: (_t, key) => (typeof key === 'string' ? (headers[key] ?? key.toUpperCase()) : undefined),
      has: () => true,
    },
  );
  let header: string;
  try {
    header = tpl.execute(headerData);
  } catch {
    header = '';
  }
  const all = [header, ...lines].flatMap((l) => l.split('\n'));
  return `${alignColumns(all)}\n`;
}
