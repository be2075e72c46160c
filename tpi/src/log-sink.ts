import { writeSync } from "node:fs";

/**
 * Where log lines wait for stdout: batched (one write per `flushMs`, not one per line) and
 * bounded. A stuck log pipe (a frozen shipper, a dead supervisor) must never stop a service, so
 * when stdout does not drain, lines beyond the bound are dropped and counted instead of piling
 * up in memory or blocking the event loop; once stdout drains again, one warning line says how
 * many were lost.
 */
export class LogSink {
  /** Lines dropped since the process started (the log_lines_dropped_total metric). */
  dropped = 0;
  private droppedUnreported = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private timer: NodeJS.Timeout | undefined;
  private waitingForDrain = false;
  /** Batches handed to the stream whose write has not called back yet. */
  private writing = 0;
  private broken = false;
  private readonly drainWaiters = new Set<() => void>();
  /** Called once writing resumes after lines were dropped; the logger writes the warning. */
  onResume: (dropped: number) => void = () => {};

  constructor(
    private readonly out: NodeJS.WritableStream & { writableLength: number },
    /** Bytes that may wait: lines here plus what the stream has queued and not yet written. */
    readonly limitBytes: number,
    private readonly flushMs = 10,
    /** fd to write leftovers to, synchronously, at process exit (stdout: 1). */
    private readonly fd?: number,
  ) {
    out.on("error", () => this.markBroken());
    out.on("drain", () => {
      this.waitingForDrain = false;
      this.flush();
      this.wakeDrainWaiters();
    });
    if (fd !== undefined) process.once("exit", () => this.writeLeftoversNow());
  }

  /**
   * What waits, in this buffer and in the stream's queue (the log_buffer_bytes gauge). Counted
   * in UTF-16 code units, which is bytes for the ASCII that log lines almost always are.
   */
  get bufferedBytes(): number {
    return this.pendingBytes + this.out.writableLength;
  }

  write(line: string): void {
    if (this.broken || this.bufferedBytes + line.length > this.limitBytes) {
      this.dropped += 1;
      this.droppedUnreported += 1;
      return;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    if (!this.timer && !this.waitingForDrain) {
      this.timer = setTimeout(() => this.flush(), this.flushMs);
      this.timer.unref(); // the exit hook writes what is left
    }
  }

  /**
   * Writes what is buffered now; resolves once stdout has taken all of it (true), or with false
   * when `timeoutMs` passes first or stdout is broken. Never rejects.
   */
  drain(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => this.flush(resolve, timeoutMs));
  }

  private flush(cb?: (written: boolean) => void, timeoutMs = 0): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.waitingForDrain && !this.broken && this.pending.length > 0) {
      const chunk = this.pending.join("");
      this.pending = [];
      this.pendingBytes = 0;
      this.writing += 1;
      try {
        this.waitingForDrain = !this.out.write(chunk, this.written);
      } catch {
        // A file stdout writes synchronously and throws (ENOSPC): the same as a broken pipe.
        this.writing -= 1;
        this.markBroken();
      }
    }
    if (!cb) return;
    if (this.idle()) {
      cb(!this.broken);
      return;
    }
    const done = () => {
      clearTimeout(timer);
      this.drainWaiters.delete(check);
      cb(this.idle() && !this.broken);
    };
    const check = () => {
      if (this.idle() || this.broken) done();
      else if (!this.waitingForDrain) this.flush(); // lines logged meanwhile: send them too
    };
    const timer = setTimeout(done, timeoutMs);
    this.drainWaiters.add(check);
  }

  /** A batch reached stdout: writing works (again), so a gap in the log can be reported. */
  private readonly written = (err?: Error | null) => {
    this.writing -= 1;
    if (err) this.markBroken();
    else if (this.droppedUnreported > 0) {
      const n = this.droppedUnreported;
      this.droppedUnreported = 0;
      this.onResume(n); // logs a line: it joins the next batch
    }
    this.wakeDrainWaiters();
  };

  /** EPIPE and the like: nobody will ever read these lines. Count them, never crash on them. */
  private markBroken(): void {
    if (this.broken) return;
    this.broken = true;
    this.dropped += this.pending.length;
    this.pending = [];
    this.pendingBytes = 0;
    this.wakeDrainWaiters();
  }

  private idle(): boolean {
    return this.pending.length === 0 && this.writing === 0;
  }

  private wakeDrainWaiters(): void {
    for (const waiter of [...this.drainWaiters]) waiter();
  }

  /**
   * At exit nothing asynchronous runs any more: one non-blocking attempt to write what is left
   * (stdout's fd is non-blocking for pipes, so a full pipe fails at once with EAGAIN instead of
   * hanging the exit). Skipped when the stream still queues older lines, to keep the order.
   */
  private writeLeftoversNow(): void {
    if (this.fd === undefined || this.broken || this.pending.length === 0) return;
    if (this.writing > 0) {
      this.dropped += this.pending.length;
      return;
    }
    const data = Buffer.from(this.pending.join(""));
    this.pending = [];
    this.pendingBytes = 0;
    try {
      for (let offset = 0; offset < data.length; ) {
        offset += writeSync(this.fd, data, offset);
      }
    } catch {
      // EAGAIN (the pipe is full) or EPIPE: these lines are lost.
    }
  }
}
