/**
 * The stall page's event stream (GET /stall/events) as a browser's EventSource receives it, with
 * a bounded wait for the next matching message. Also used by integration-tests against a real jafflr.
 */
import type { IncomingHttpHeaders } from "node:http";
import { EventSource } from "eventsource";
import { eventually } from "testkit/eventually";

export type StallMessage = { event: string; data: string };

const EVENTS = ["snapshot", "grill", "stock", "cold", "toastie", "meter"];

export async function openStallStream(baseUrl: string) {
  const messages: StallMessage[] = [];
  let consumed = 0;
  let answer: Response | undefined;
  let end = () => {};
  /** Settles when the stream ends (the server ended it, or close()). */
  const ended = new Promise<void>((resolve) => {
    end = resolve;
  });
  const source = new EventSource(new URL("/stall/events", baseUrl), {
    fetch: async (url, init) => (answer = await fetch(url, init)),
  });
  for (const event of EVENTS)
    source.addEventListener(event, (e) => messages.push({ event, data: e.data }));
  const close = () => {
    source.close();
    end();
  };
  // The first error (the server ended the stream, or refused it) ends it here: no reconnect.
  source.onerror = close;
  await eventually(() => source.readyState !== EventSource.CONNECTING || undefined, {
    timeoutMs: 10_000,
    message: () => "no answer",
  });
  const next = (match: (m: StallMessage) => boolean, timeoutMs = 10_000) =>
    eventually(
      () => {
        while (consumed < messages.length) {
          const m = messages[consumed++] as StallMessage;
          if (match(m)) return m;
        }
        if (source.readyState === EventSource.CLOSED) throw new Error("the stream ended first");
      },
      { timeoutMs, message: () => `no matching message; got ${messages.map((m) => m.event)}` },
    );
  return {
    status: answer?.status ?? 0,
    headers: Object.fromEntries(answer?.headers ?? []) as IncomingHttpHeaders,
    next,
    /** The next message of this event, its data parsed. */
    nextEvent: async <T = unknown>(event: string, timeoutMs?: number) =>
      JSON.parse((await next((m) => m.event === event, timeoutMs)).data) as T,
    ended,
    close,
  };
}

export type StallStream = Awaited<ReturnType<typeof openStallStream>>;
