/**
 * One response body as it arrives over an upstream connection, framed as its
 * head says (RFC 9112 §6.3). A body with a Content-Length up to 256 KiB is
 * assembled and handed out whole, so the client still gets its Content-Length
 * (Bun's server drops it for streams, oven-sh/bun#10507); anything else is a
 * stream that pauses the socket while the client reads slowly.
 */
import { ChunkedDecoder, type BodyFraming } from "../../decide/http1.ts";

const BUFFER_BODY_LIMIT = 256 * 1024;
/** Response chunks queued for a slow client before the upstream socket is paused. */
const QUEUED_CHUNKS = 8;

/** What the body tells its connection. */
export interface BodySink {
  /** The response can be handed out: with a whole body, a stream, or none. */
  respond(body: Uint8Array | ReadableStream<Uint8Array> | null): void;
  /** The whole body arrived; `clean` is false when more bytes came than announced (never reuse the connection). */
  finished(clean: boolean): void;
  pause(): void;
  resume(): void;
  /** The client stopped reading before the end. */
  abandoned(): void;
}

export class IncomingBody {
  readonly #framing: BodyFraming;
  readonly #sink: BodySink;
  #remaining = 0;
  #decoder: ChunkedDecoder | undefined;
  #controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  #assembly: Uint8Array | undefined;
  #assembled = 0;
  #done = false;

  constructor(framing: BodyFraming, sink: BodySink) {
    this.#framing = framing;
    this.#sink = sink;
    if (framing.kind === "none") {
      sink.respond(null);
      this.#finish(true);
      return;
    }
    if (framing.kind === "length") {
      this.#remaining = framing.length;
      if (framing.length <= BUFFER_BODY_LIMIT) this.#assembly = new Uint8Array(framing.length);
      else this.#stream();
      return;
    }
    if (framing.kind === "chunked") this.#decoder = new ChunkedDecoder();
    this.#stream();
  }

  get done(): boolean {
    return this.#done;
  }

  /** Bytes that arrived for this body (and maybe beyond it). Throws ProtocolError on bad chunked framing. */
  push(chunk: Uint8Array): void {
    if (this.#done) return; // the connection drops bytes that arrive after the end
    if (this.#framing.kind === "length") {
      const take = Math.min(this.#remaining, chunk.byteLength);
      this.#remaining -= take;
      const piece = chunk.subarray(0, take);
      if (this.#assembly) {
        this.#assembly.set(piece, this.#assembled);
        this.#assembled += take;
        if (this.#remaining === 0) this.#sink.respond(this.#assembly);
      } else this.#enqueue(piece);
      if (this.#remaining === 0) this.#finish(take === chunk.byteLength);
      return;
    }
    if (this.#decoder) {
      const { pieces, consumed } = this.#decoder.push(chunk);
      for (const piece of pieces) this.#enqueue(piece);
      if (this.#decoder.done) this.#finish(consumed === chunk.byteLength);
      return;
    }
    this.#enqueue(chunk); // until close
  }

  /** The connection closed. True when that was the body's end (no length given), false when it cut the body short. */
  closed(): boolean {
    if (this.#framing.kind !== "close" || this.#done) return this.#done;
    this.#finish(true);
    return true;
  }

  /** Errors the stream, if the client is still reading one. */
  fail(error: unknown): void {
    if (this.#done) return;
    this.#done = true;
    try {
      this.#controller?.error(error);
    } catch {
      // already closed or cancelled
    }
  }

  #stream(): void {
    const stream = new ReadableStream<Uint8Array>(
      {
        start: (controller) => {
          this.#controller = controller;
        },
        pull: () => this.#sink.resume(),
        cancel: () => {
          if (!this.#done) this.#sink.abandoned();
        },
      },
      { highWaterMark: QUEUED_CHUNKS },
    );
    this.#sink.respond(stream);
  }

  #enqueue(piece: Uint8Array): void {
    const controller = this.#controller;
    if (!controller || piece.byteLength === 0) return;
    // No copy: Bun hands every data callback a fresh buffer (checked on 1.4.4), so a view into it stays valid.
    controller.enqueue(piece);
    if ((controller.desiredSize ?? 1) <= 0) this.#sink.pause();
  }

  #finish(clean: boolean): void {
    this.#done = true;
    try {
      this.#controller?.close();
    } catch {
      // already cancelled by the client
    }
    this.#sink.finished(clean);
  }
}
