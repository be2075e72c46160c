/**
 * No orphans: what `npm start` and the tests start (the embedded PostgreSQL, the services) is
 * stopped even when the process that started it dies without cleaning up — kill -9, an OOM kill,
 * a closed terminal. 'exit' handlers do not run then, so the clean-up lives in another process:
 * a detached reaper (reaper-process.cjs) holding the read end of a pipe from us. When we die the
 * kernel closes the pipe, and the reaper stops whatever we still had it watch.
 *
 *   reaper().watch({ pid, name: "postgres", signal: "SIGINT", escalate: "SIGQUIT" });
 *   …
 *   reaper().forget(pid); // stopped it ourselves
 *
 * The services also stop by themselves when their supervisor goes (they are spawned with an IPC
 * channel and tpi shuts down on 'disconnect'); the reaper gives them `waitMs` to do so before it
 * signals them, so PostgreSQL is stopped only after they have drained.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { Socket } from "node:net";
import path from "node:path";

export interface Watched {
  pid: number;
  /** For the reader of the commands; the reaper does not print. */
  name: string;
  /** How to ask it to stop (default SIGTERM). */
  signal?: NodeJS.Signals;
  /** Sent when `graceMs` after `signal` it is still there (default SIGKILL). */
  escalate?: NodeJS.Signals;
  /** How long it may take to exit by itself before it is signalled (default 0). */
  waitMs?: number;
  /** How long it may take to stop after `signal` (default 30 s). */
  graceMs?: number;
  /** Lower stages are stopped first, one stage at a time, a stage's processes at once (default 0). */
  stage?: number;
}

export interface Reaper {
  watch(entry: Watched): void;
  forget(pid: number): void;
  /** Delete `dir` after everything watched has stopped (a throwaway data directory). */
  removeAfter(dir: string): void;
  /** The directory was deleted by us: leave it alone. */
  keep(dir: string): void;
}

const SCRIPT = path.join(__dirname, "reaper-process.cjs");
let child: ChildProcess | undefined;

/** This process's reaper, started on first use. */
export function reaper(): Reaper {
  const send = (command: object) => {
    child ??= startReaper();
    child.stdin?.write(`${JSON.stringify(command)}\n`);
  };
  return {
    watch: (entry) => send({ watch: entry }),
    forget: (pid) => child && send({ forget: pid }),
    removeAfter: (dir) => send({ remove: dir }),
    keep: (dir) => child && send({ keep: dir }),
  };
}

function startReaper(): ChildProcess {
  // detached: its own session, so a Ctrl-C in the terminal or the terminal closing does not reach
  // it; stdin a pipe (close-on-exec, so no other child inherits its write end and keeps it open).
  const started = spawn(process.execPath, [SCRIPT], {
    detached: true,
    stdio: ["pipe", "ignore", "ignore"],
  });
  started.on("error", () => {}); // no reaper is no worse than before; the run goes on
  started.stdin?.on("error", () => {});
  // Neither the process nor the pipe may keep us alive: the reaper is for when we are gone.
  started.unref();
  if (started.stdin instanceof Socket) started.stdin.unref();
  return started;
}
