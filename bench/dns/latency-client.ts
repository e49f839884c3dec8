/**
 * Latency client of the DNS benchmark: keeps `inflight` queries for one name outstanding for
 * `secs` seconds against `server`:53 and prints JSON with queries/s, p50 and p99 in µs. The same
 * client measures both servers, so its own cost cancels out in the ratios.
 *
 * argv: server name inflight secs
 */
import dgram from 'node:dgram';

const [server = '', name = '', inflightArg = '1', secsArg = '3'] = process.argv.slice(2);
const inflight = Number(inflightArg);
const secs = Number(secsArg);

function query(id: number): Buffer {
  const labels = name
    .split('.')
    .map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]));
  const head = Buffer.alloc(12);
  head.writeUInt16BE(id, 0);
  head.writeUInt16BE(0x0100, 2);
  head.writeUInt16BE(1, 4);
  return Buffer.concat([head, ...labels, Buffer.from([0, 0, 1, 0, 1])]);
}

const sock = dgram.createSocket('udp4');
const sent = new Map<number, bigint>();
const lat: number[] = [];
let nextId = 0;
let lost = 0;
const end = process.hrtime.bigint() + BigInt(secs * 1e9);
let stopped = false;

function send(): void {
  if (stopped) return;
  const id = nextId++ & 0xffff;
  sent.set(id, process.hrtime.bigint());
  sock.send(query(id), 53, server);
}

sock.on('message', (msg) => {
  const id = msg.readUInt16BE(0);
  const t0 = sent.get(id);
  if (t0 === undefined) return;
  sent.delete(id);
  const now = process.hrtime.bigint();
  lat.push(Number(now - t0) / 1000);
  if (now >= end) {
    if (!stopped) {
      stopped = true;
      setTimeout(finish, 200);
    }
    return;
  }
  send();
});

function finish(): void {
  lost = sent.size;
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))] ?? 0;
  process.stdout.write(
    JSON.stringify({
      qps: Math.round(lat.length / secs),
      p50us: pct(0.5),
      p99us: pct(0.99),
      lost,
    }) + '\n',
  );
  sock.close();
}

// A query lost on the way would shrink the window for good: re-send after 1 s of silence.
setInterval(() => {
  const now = process.hrtime.bigint();
  for (const [id, t0] of sent) {
    if (now - t0 > 1_000_000_000n) {
      sent.delete(id);
      send();
    }
  }
}, 500).unref();

for (let i = 0; i < inflight; i++) send();
