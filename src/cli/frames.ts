/**
 * Decoder for the exec stream: Docker's 8-byte frame header (byte 0 stream, bytes 4–7 length,
 * big-endian), where stream 3 is cnm's exit frame (int32 BE exit code). Pure.
 */

/** One decoded frame. */
export interface Frame {
  stream: number;
  payload: Buffer;
}

/** Accumulates chunks and yields whole frames. */
export class FrameDecoder {
  #buf: Buffer = Buffer.alloc(0);

  /** Adds a chunk; returns the frames completed by it. */
  push(chunk: Buffer): Frame[] {
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    const frames: Frame[] = [];
    while (this.#buf.length >= 8) {
      const len = this.#buf.readUInt32BE(4);
      if (this.#buf.length < 8 + len) break;
      frames.push({ stream: this.#buf[0] ?? 0, payload: this.#buf.subarray(8, 8 + len) });
      this.#buf = this.#buf.subarray(8 + len);
    }
    return frames;
  }

  /** Bytes of an incomplete frame left over (non-zero at the end means a cut stream). */
  get pending(): number {
    return this.#buf.length;
  }
}

/** Writes `chunk` and waits for `drain` when the destination is full. */
export async function writeOut(out: NodeJS.WritableStream, chunk: Buffer | string): Promise<void> {
  if (out.write(chunk)) return;
  await new Promise<void>((resolve) => out.once('drain', () => resolve()));
}
