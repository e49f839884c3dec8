import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket from 'dns-packet';
import {
  QTYPE,
  RCODE,
  buildAnswer,
  buildEmpty,
  buildError,
  encodeName,
  isQuery,
  parseQuery,
  reverseNameToAddress,
  sizeLimit,
} from './wire.js';

function query(name: string, type: dnsPacket.RecordType = 'A', edns = false): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: 'IN' }],
    ...(edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 } as never] } : {}),
  });
}

test('parseQuery() reads id, lower-cased name, type and EDNS size', () => {
  const q = parseQuery(query('Web.N1', 'AAAA', true));
  assert.ok(isQuery(q));
  assert.equal(q.id, 4242);
  assert.equal(q.name, 'web.n1');
  assert.equal(q.type, QTYPE.AAAA);
  assert.equal(q.rd, true);
  assert.equal(q.ednsSize, 4096);
});

test('parseQuery() drops runts and responses, FORMERRs bad questions, NOTIMPs opcodes', () => {
  assert.deepEqual(parseQuery(Buffer.alloc(5)), { drop: true });
  const resp = query('a');
  resp[2]! |= 0x80;
  assert.deepEqual(parseQuery(resp), { drop: true });
  const noQ = Buffer.from('12340100000000000000000000', 'hex').subarray(0, 12);
  assert.deepEqual(parseQuery(noQ), { drop: false, id: 0x1234, rd: true, rcode: RCODE.FORMERR });
  const ptr = Buffer.concat([query('a').subarray(0, 12), Buffer.from('c00c00010001', 'hex')]);
  assert.equal((parseQuery(ptr) as { rcode: number }).rcode, RCODE.FORMERR);
  const cut = query('abcdef').subarray(0, 15);
  assert.equal((parseQuery(cut) as { rcode: number }).rcode, RCODE.FORMERR);
  const upd = query('a');
  upd[2] = 0x28;
  assert.equal((parseQuery(upd) as { rcode: number }).rcode, RCODE.NOTIMP);
});

test('buildAnswer() is a valid message dns-packet decodes, with every record', () => {
  const raw = query('pool', 'A', true);
  const q = parseQuery(raw);
  assert.ok(isQuery(q));
  const out = buildAnswer(raw, q, {
    rcode: RCODE.NOERROR,
    ttl: 600,
    limit: sizeLimit(q, 'udp'),
    records: [
      { type: QTYPE.A, data: new Uint8Array([10, 0, 0, 2]) },
      { type: QTYPE.A, data: new Uint8Array([10, 0, 0, 3]) },
    ],
  });
  const p = dnsPacket.decode(out);
  assert.equal(p.id, 4242);
  assert.equal(p.type, 'response');
  assert.deepEqual(
    p.answers?.map((a) => [
      a.name,
      a.type,
      (a as { data: string }).data,
      (a as { ttl?: number }).ttl,
    ]),
    [
      ['pool', 'A', '10.0.0.2', 600],
      ['pool', 'A', '10.0.0.3', 600],
    ],
  );
  assert.equal(p.additionals?.[0]?.type, 'OPT');
});

test('buildAnswer() cuts records that do not fit and sets TC', () => {
  const raw = query('pool');
  const q = parseQuery(raw);
  assert.ok(isQuery(q));
  const records = Array.from({ length: 100 }, (_, i) => ({
    type: QTYPE.A,
    data: new Uint8Array([10, 0, 0, i]),
  }));
  const out = buildAnswer(raw, q, { rcode: 0, ttl: 1, limit: 512, records });
  assert.ok(out.length <= 512);
  const p = dnsPacket.decode(out);
  assert.ok((p.flags! & dnsPacket.TRUNCATED_RESPONSE) !== 0);
  assert.ok(p.answers!.length > 20 && p.answers!.length < 100);
});

test('PTR data, errors and empty answers decode', () => {
  const raw = query('2.0.0.10.in-addr.arpa', 'PTR');
  const q = parseQuery(raw);
  assert.ok(isQuery(q));
  const out = buildAnswer(raw, q, {
    rcode: 0,
    ttl: 600,
    limit: 512,
    records: [{ type: QTYPE.PTR, data: encodeName('web.n1') }],
  });
  assert.equal((dnsPacket.decode(out).answers?.[0] as { data: string }).data, 'web.n1');
  assert.equal(
    (dnsPacket.decode(buildError(7, true, RCODE.FORMERR)) as { rcode?: string }).rcode,
    'FORMERR',
  );
  const e = dnsPacket.decode(buildEmpty(raw, q, RCODE.REFUSED)) as dnsPacket.DecodedPacket & {
    rcode?: string;
  };
  assert.equal(e.rcode, 'REFUSED');
  assert.equal(e.questions?.[0]?.name, '2.0.0.10.in-addr.arpa');
});

test('reverseNameToAddress() reads in-addr.arpa and ip6.arpa names', () => {
  assert.equal(reverseNameToAddress('4.3.2.1.in-addr.arpa'), '1.2.3.4');
  assert.equal(reverseNameToAddress('3.2.1.in-addr.arpa'), undefined);
  assert.equal(reverseNameToAddress('300.3.2.1.in-addr.arpa'), undefined);
  const nib = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.6.d.f.0.0.0.0.ip6.arpa';
  assert.equal(reverseNameToAddress(nib), '0000:fd61:0000:0000:0000:0000:0000:0001');
});
