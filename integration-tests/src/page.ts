import { eventually } from "testkit/eventually";
import type { Json } from "testkit/http-client";

export interface Message {
  event: string;
  data: Json;
}

/** The stall page's event stream (GET /stall/events) as a browser's EventSource receives it. */
export async function openPage(baseUrl: string) {
  const abort = new AbortController();
  const url = new URL("/stall/events", baseUrl);
  const response = await fetch(url, {
    headers: { accept: "text/event-stream" },
    signal: abort.signal,
  });
  const messages: Message[] = [];
  const ended = (async () => {
    let buffer = "";
    try {
      for await (const chunk of response.body ?? []) {
        buffer += Buffer.from(chunk).toString("utf8");
        for (let end = buffer.indexOf("\n\n"); end >= 0; end = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: ?(.*)$/m.exec(block)?.[1] ?? "message";
          const data = [...block.matchAll(/^data: ?(.*)$/gm)].map((m) => m[1]).join("\n");
          if (data) messages.push({ event, data: JSON.parse(data) });
        }
      }
    } catch {} // closed by us
  })();
  let taken = 0;
  /** The next message not yet taken that matches. */
  const next = (match: (m: Message) => unknown, timeoutMs = 10_000) =>
    eventually(
      () => {
        while (taken < messages.length) {
          const m = messages[taken++] as Message;
          if (match(m)) return m;
        }
        return undefined;
      },
      {
        timeoutMs,
        intervalMs: 20,
        message: () => `no such event: ${JSON.stringify(messages.slice(-5))}`,
      },
    );
  return {
    next,
    nextEvent: async (event: string, timeoutMs?: number) =>
      (await next((m) => m.event === event, timeoutMs)).data,
    /** Settles when the server ends the stream. */
    ended,
    close: () => abort.abort(),
  };
}
