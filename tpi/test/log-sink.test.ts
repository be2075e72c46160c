import assert from "node:assert/strict";
import { Writable } from "node:stream";
import { describe, it } from "node:test";
import { LogSink } from "../src/log-sink";

/** A stdout stand-in that takes writes only when the test says so, like a pipe nobody reads. */
function stuckStdout() {
  const chunks: string[] = [];
  const waiting: (() => void)[] = [];
  const out = new Writable({
    highWaterMark: 100,
    write(chunk, _enc, cb) {
      chunks.push(chunk.toString());
      waiting.push(cb);
    },
  });
  /** The reader wakes up: everything written so far is taken. */
  const unstick = () => {
    for (let cb = waiting.shift(); cb; cb = waiting.shift()) cb();
  };
  return { out, chunks, unstick };
}

const nextEvent = () => new Promise((r) => setImmediate(r));

describe("LogSink", () => {
  it("batches the lines of one moment into one write", async () => {
    const { out, chunks, unstick } = stuckStdout();
    const sink = new LogSink(out, 10_000, 0);
    for (let i = 0; i < 5; i++) sink.write(`line ${i}\n`);
    const drained = sink.drain(1000);
    unstick();
    assert.equal(await drained, true);
    assert.deepEqual(chunks, ["line 0\nline 1\nline 2\nline 3\nline 4\n"]);
  });

  it("drops and counts lines beyond the bound, then reports them once writing resumes", async () => {
    const { out, chunks, unstick } = stuckStdout();
    const sink = new LogSink(out, 100, 0);
    const reports: number[] = [];
    sink.onResume = (n) => {
      reports.push(n);
      sink.write(`dropped ${n}\n`);
    };
    for (let i = 0; i < 50; i++) sink.write(`line ${String(i).padStart(2, "0")}\n`); // 8 chars each
    assert.equal(sink.dropped, 38, "12 lines of 8 fit in 100");
    assert.ok(sink.bufferedBytes <= 100, `${sink.bufferedBytes} waiting`);
    assert.equal(await sink.drain(50), false, "stdout took nothing: not drained");
    assert.ok(sink.bufferedBytes <= 100, "still bounded while stdout is stuck");
    sink.write("more\n");
    assert.equal(sink.dropped, 39, "still dropping while stuck");

    unstick();
    const drained = sink.drain(1000);
    unstick();
    await nextEvent();
    unstick();
    assert.equal(await drained, true);
    assert.deepEqual(reports, [39], "one report with the count");
    const written = chunks.join("");
    assert.match(written, /^line 00\n/);
    assert.match(written, /dropped 39\n$/);
    assert.equal(written.split("\n").filter(Boolean).length, 12 + 1);
  });

  it("a broken stdout (EPIPE) counts lines as dropped and never throws", async () => {
    const out = new Writable({
      write(_chunk, _enc, cb) {
        cb(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }));
      },
    });
    const sink = new LogSink(out, 1000, 0);
    sink.write("lost\n");
    assert.equal(await sink.drain(1000), false);
    sink.write("also lost\n");
    assert.equal(sink.dropped, 1, "after the error, lines are dropped at once");
  });

  it("a stdout whose write throws (a full disk) is treated as broken, never crashes", async () => {
    const out = new Writable({
      write() {
        throw Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
      },
    });
    const sink = new LogSink(out, 1000, 0);
    sink.write("lost\n");
    assert.equal(await sink.drain(1000), false);
    sink.write("also lost\n");
    assert.equal(sink.dropped, 1);
  });
});
