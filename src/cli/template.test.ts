import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Template, TemplateError, alignColumns, renderList } from './template.js';

const net = {
  Name: 'web',
  IPAM: { Config: [{ Subnet: '10.0.0.0/24', Gateway: '10.0.0.1' }, { Subnet: 'fd00::/64' }] },
  Labels: { b: '2', a: '1' },
  Internal: false,
  Containers: {},
};
const ctr = {
  State: { Pid: 42, Running: true },
  NetworkSettings: {
    SandboxKey: '/run/cnm/netns/abc',
    Networks: { net: { IPAddress: '10.0.0.2' } },
  },
  Args: ['-c', 'x'],
};
const t = (src: string, data: unknown): string => Template.parse(src).execute(data);

describe('Template.execute()', () => {
  it('reads field chains and prints missing map keys as <no value>', () => {
    assert.equal(
      t('{{.Name}} {{.IPAM.Config}}', net),
      'web [map[Gateway:10.0.0.1 Subnet:10.0.0.0/24] map[Subnet:fd00::/64]]',
    );
    assert.equal(t('{{.Nope}}', net), '<no value>');
    assert.equal(t('{{.State.Pid}} {{.NetworkSettings.SandboxKey}}', ctr), '42 /run/cnm/netns/abc');
  });

  it('ranges over lists and over maps in key order, with variables', () => {
    assert.equal(t('{{range .IPAM.Config}}{{.Subnet}};{{end}}', net), '10.0.0.0/24;fd00::/64;');
    assert.equal(t('{{range $k, $v := .Labels}}{{$k}}={{$v}},{{end}}', net), 'a=1,b=2,');
    assert.equal(
      t('{{range $i, $c := .IPAM.Config}}{{$i}}:{{$c.Subnet}} {{end}}', net),
      '0:10.0.0.0/24 1:fd00::/64 ',
    );
    assert.equal(t('{{range .Containers}}x{{else}}none{{end}}', net), 'none');
    assert.equal(t('{{range .IPAM.Config}}{{$.Name}}{{end}}', net), 'webweb');
  });

  it('evaluates if / else if / else and with', () => {
    assert.equal(t('{{if .Internal}}in{{else}}out{{end}}', net), 'out');
    assert.equal(t('{{if .Internal}}a{{else if .Name}}b{{else}}c{{end}}', net), 'b');
    assert.equal(t('{{with .State}}{{.Pid}}{{end}}', ctr), '42');
    assert.equal(t('{{if and .State.Running (eq .State.Pid 42)}}yes{{end}}', ctr), 'yes');
    assert.equal(t('{{if not .Containers}}empty{{end}}', net), 'empty');
  });

  it('supports json, index, join, println and pipelines', () => {
    assert.equal(t('{{json .Labels}}', net), '{"b":"2","a":"1"}');
    assert.equal(t('{{index .Labels "a"}}', net), '1');
    assert.equal(t('{{(index .NetworkSettings.Networks "net").IPAddress}}', ctr), '10.0.0.2');
    assert.equal(t('{{join .Args ","}}', ctr), '-c,x');
    assert.equal(t('{{.Name | upper}}{{println}}', net), 'WEB\n');
    assert.equal(t('{{println .Name "x"}}', net), 'web x\n');
    assert.equal(t('{{len .IPAM.Config}} {{printf "%s-%d" .Name 3}}', net), '2 web-3');
    assert.equal(t('{{$n := .Name}}{{$n}}!', net), 'web!');
  });

  it('trims whitespace around {{- and -}} and skips comments', () => {
    assert.equal(t('a  {{- .Name -}}  b{{/* note */}}', net), 'awebb');
  });

  it('reports syntax errors and unknown functions', () => {
    assert.throws(() => Template.parse('{{.Name'), TemplateError);
    assert.throws(() => Template.parse('{{if .X}}a'), TemplateError);
    assert.throws(() => Template.parse('{{frob .X}}'), /function "frob" not defined/);
    assert.throws(() => Template.parse('{{end}}'), TemplateError);
    assert.throws(() => t('{{index .Args 5}}', ctr), /out of range/);
  });
});

describe('renderList()', () => {
  it('table prefix adds headers and aligns columns like tabwriter', () => {
    const rows = [
      { ID: 'abc', Name: 'bridge' },
      { ID: 'defdefdefdefdef', Name: 'n' },
    ];
    assert.equal(
      renderList('table {{.ID}}\\t{{.Name}}', rows, { ID: 'NETWORK ID', Name: 'NAME' }),
      'NETWORK ID        NAME\nabc               bridge\ndefdefdefdefdef   n\n',
    );
  });

  it('without table prints one line per item and no header', () => {
    assert.equal(renderList('{{.Name}}', [{ Name: 'a' }, { Name: 'b' }], {}), 'a\nb\n');
  });

  it('alignColumns() pads to at least 10 and never pads the last cell', () => {
    assert.equal(alignColumns(['a\tb', 'ccc\td']), 'a         b\nccc       d');
  });
});
