/**
 * The text/event-stream parser that reads chillybin's GET /events: chunks split anywhere
 * (inside a line, between CR and LF), comments, multi-line data, and the event names the
 * contract uses. Strings only — the stream itself is tested against a real chillybin.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { type SseMessage, SseParser, sseEvent } from "../src/page/sse-parser";

function parseAll(chunks: string[]) {
  const messages: SseMessage[] = [];
  const comments: string[] = [];
  const parser = new SseParser({
    message: (m) => messages.push(m),
    comment: (c) => comments.push(c),
  });
  for (const chunk of chunks) parser.push(chunk);
  return { messages, comments };
}

const STREAM =
  'event: stock\ndata: {"bread":10,"cheese":9}\n\n: heartbeat\n\nevent: pick\r\ndata: {"via":"v2","items":[]}\r\n\r\n' +
  "data: line one\ndata: line two\n\nevent: empty\n\n";

describe("SseParser", () => {
  it("reads events, comments, CRLF and multi-line data; an event without data is not dispatched", () => {
    const { messages, comments } = parseAll([STREAM]);
    assert.deepEqual(messages, [
      { event: "stock", data: '{"bread":10,"cheese":9}' },
      { event: "pick", data: '{"via":"v2","items":[]}' },
      { event: "message", data: "line one\nline two" },
    ]);
    assert.deepEqual(comments, ["heartbeat"]);
  });

  it("gives the same messages however the stream is cut into chunks", () => {
    const whole = parseAll([STREAM]).messages;
    for (let size = 1; size <= 7; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < STREAM.length; i += size) chunks.push(STREAM.slice(i, i + size));
      assert.deepEqual(parseAll(chunks).messages, whole, `chunks of ${size}`);
    }
    // CR at the end of one chunk, LF at the start of the next: one line break, not two.
    assert.deepEqual(parseAll(["data: a\r", "\ndata: b\r", "\n\r", "\n"]).messages, [
      { event: "message", data: "a\nb" },
    ]);
  });

  it("refuses a line that never ends rather than buffering without bound", () => {
    const parser = new SseParser({ message: () => {} });
    assert.throws(() => parser.push(`data: ${"x".repeat(1024 * 1024 + 1)}`), /longer than 1 MiB/);
  });

  it("sseEvent writes one event a browser's EventSource reads back as the same JSON", () => {
    const data = { customer: "line\nbreak <img src=x onerror=alert(1)>", n: 1 };
    const { messages } = parseAll([sseEvent("toastie", data)]);
    assert.equal(messages[0]?.event, "toastie");
    assert.deepEqual(JSON.parse(messages[0]?.data ?? ""), data);
  });
});
