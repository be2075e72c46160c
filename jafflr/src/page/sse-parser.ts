/**
 * An incremental text/event-stream parser (the WHATWG "event stream interpretation"): chunks may
 * split lines and even CRLF pairs anywhere, so the parser keeps the unfinished line between
 * calls. Used for chillybin's GET /events; comments (heartbeats) are reported so a watcher knows
 * the connection is alive.
 */
export interface SseMessage {
  event: string;
  data: string;
  id?: string;
}

export interface SseHandlers {
  message(msg: SseMessage): void;
  /** A comment line (`: …`), e.g. a heartbeat. */
  comment?(text: string): void;
}

/** Lines longer than this (1 MiB) are a broken or hostile stream, not a stock object. */
const MAX_LINE = 1024 * 1024;

export class SseParser {
  private buffer = "";
  private skipLf = false;
  private event = "";
  private data: string[] = [];
  private id: string | undefined;

  constructor(private readonly handlers: SseHandlers) {}

  /** Feeds decoded text; throws when one line grows past 1 MiB. */
  push(text: string): void {
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const ch = text.charCodeAt(i);
      if (this.skipLf) {
        this.skipLf = false;
        if (ch === 10) {
          start = i + 1;
          continue;
        }
      }
      if (ch === 10 || ch === 13) {
        this.line(this.buffer + text.slice(start, i));
        this.buffer = "";
        start = i + 1;
        // A CR may be the first half of a CRLF that arrives in the next chunk.
        if (ch === 13) this.skipLf = true;
      }
    }
    this.buffer += text.slice(start);
    if (this.buffer.length > MAX_LINE) throw new Error("event stream line longer than 1 MiB");
  }

  private line(line: string): void {
    if (line === "") {
      this.dispatch();
      return;
    }
    if (line.startsWith(":")) {
      this.handlers.comment?.(line.slice(1).trimStart());
      return;
    }
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") this.event = value;
    else if (field === "data") this.data.push(value);
    else if (field === "id" && !value.includes("\0")) this.id = value;
    // "retry" and unknown fields: the watcher keeps its own backoff, so they are ignored.
  }

  private dispatch(): void {
    if (this.data.length > 0) {
      this.handlers.message({
        event: this.event || "message",
        data: this.data.join("\n"),
        ...(this.id !== undefined ? { id: this.id } : {}),
      });
    }
    this.event = "";
    this.data = [];
  }
}

/** Formats one event for a browser's EventSource: every line of `data` gets its own field. */
export function sseEvent(event: string, data: unknown): string {
  const json = JSON.stringify(data);
  // JSON.stringify never emits raw CR/LF, but U+2028/9 are fine in SSE; one data line suffices.
  return `event: ${event}\ndata: ${json}\n\n`;
}
