/** Response writers shared by the route files. */
import type { ServerResponse } from 'node:http';

/** Writes `body` as JSON with a trailing newline, as dockerd's encoder does. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Ends the response with no body (204, or 200 for connect/disconnect). */
export function sendEmpty(res: ServerResponse, status: number): void {
  res.writeHead(status);
  res.end();
}

/** Writes a chunk and waits for `drain` when the socket buffer is full. */
export async function writeChunk(res: ServerResponse, chunk: Buffer | string): Promise<void> {
  if (res.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}
