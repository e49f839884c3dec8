/**
 * Docker's multiplexed stream framing, used by `exec`: an 8-byte header (byte 0 the stream,
 * bytes 4–7 the payload length, big-endian) before each payload. Stream 3 is cnm's addition: its
 * 4-byte payload is the exit code (int32 BE), so a client needs no second request to learn it.
 */

/** Stream ids in byte 0 of a frame header. */
export const STREAM = { stdout: 1, stderr: 2, exit: 3 } as const;

/** One frame: header plus payload. */
export function encodeFrame(stream: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt8(stream, 0);
  header.writeUInt32BE(payload.length, 4);
  return Buffer.concat([header, payload]);
}

/** The final frame carrying the exit code. */
export function encodeExitFrame(code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeInt32BE(code, 0);
  return encodeFrame(STREAM.exit, payload);
}
