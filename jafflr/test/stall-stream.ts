/**
 * A reader of the stall page's event stream (GET /stall/events) for tests: what a browser's
 * EventSource would receive, as parsed messages, with a bounded wait for the next matching one.
 * Also used by integration-tests/test/stall-page.test.ts against a real jafflr process.
 */
import http from "node:http";
import { type SseMessage, SseParser } from "../src/page/sse-parser";

export interface StallStream {
  status: number;
  headers: http.IncomingHttpHeaders;
  messages: SseMessage[];
  /** Resolves with the first message (already received or still to come) matching `match`. */
  next(match: (m: SseMessage) => boolean, timeoutMs?: number): Promise<SseMessage>;
  /** The next `event:` message of this name, its data parsed. */
  nextEvent<T = unknown>(event: string, timeoutMs?: number): Promise<T>;
  /** Settles when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

export function openStallStream(baseUrl: string, timeoutMs = 10_000): Promise<StallStream> {
  return new Promise((resolve, reject) => {
    const req = http.get(new URL("/stall/events", baseUrl), {
      headers: { accept: "text/event-stream" },
      timeout: timeoutMs,
    });
    req.once("timeout", () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.once("error", reject);
    req.once("response", (res) => {
      const messages: SseMessage[] = [];
      let consumed = 0;
      const waiters = new Set<() => void>();
      const parser = new SseParser({
        message(m) {
          messages.push(m);
          for (const w of waiters) w();
        },
      });
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => parser.push(chunk));
      // An idle stream must not trip the request timeout that guarded the connect.
      req.setTimeout(0);
      const ended = new Promise<void>((done) => res.once("close", done));
      let isEnded = false;
      void ended.then(() => {
        isEnded = true;
        for (const w of waiters) w();
      });
      const next = (match: (m: SseMessage) => boolean, wait = 10_000) =>
        new Promise<SseMessage>((done, fail) => {
          const check = () => {
            while (consumed < messages.length) {
              const m = messages[consumed++] as SseMessage;
              if (match(m)) {
                cleanup();
                done(m);
                return;
              }
            }
            if (isEnded) {
              cleanup();
              fail(new Error("the stream ended before the expected message"));
            }
          };
          const timer = setTimeout(() => {
            cleanup();
            fail(
              new Error(
                `no matching message within ${wait} ms; got ${JSON.stringify(messages.map((m) => m.event))}`,
              ),
            );
          }, wait);
          const cleanup = () => {
            clearTimeout(timer);
            waiters.delete(check);
          };
          waiters.add(check);
          check();
        });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        messages,
        next,
        async nextEvent<T>(event: string, wait?: number) {
          const m = await next((x) => x.event === event, wait);
          return JSON.parse(m.data) as T;
        },
        ended,
        close: () => req.destroy(),
      });
    });
  });
}
