// The reaper itself (see reaper.ts): a detached process that outlives whoever started it and
// stops what that process left running. Plain CommonJS so the bare node binary starts it in a
// few milliseconds, without tsx.
//
// stdin carries one JSON command per line from the parent:
//   {"watch":{"pid":123,"name":"postgres","signal":"SIGINT","escalate":"SIGQUIT","stage":1}}
//   {"forget":123}        the parent stopped it itself
//   {"remove":"/tmp/x"}   delete this directory once everything is stopped
//   {"keep":"/tmp/x"}     the parent deleted it itself
// stdin ends when the parent closes it (nothing left to watch) or dies, even by SIGKILL: the
// kernel closes a dead process's pipes. Whatever is still watched then is stopped, stage by stage
// ("stage": 0 by default): the services together, then PostgreSQL (stage 1) once they have
// drained, as a clean shutdown would.
"use strict";
const fs = require("node:fs");

const watched = [];
const removals = new Set();

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return error.code === "EPERM";
  }
}

async function exited(pid, ms) {
  const deadline = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return true;
}

function send(pid, signal) {
  try {
    process.kill(pid, signal);
  } catch {
    // gone already
  }
}

/** Lets it exit by itself first (a service shuts down when its IPC channel closes), then insists. */
async function reap({
  pid,
  signal = "SIGTERM",
  escalate = "SIGKILL",
  waitMs = 0,
  graceMs = 30_000,
}) {
  if (await exited(pid, waitMs)) return;
  send(pid, signal);
  if (await exited(pid, graceMs)) return;
  send(pid, escalate);
  if (await exited(pid, 10_000)) return;
  send(pid, "SIGKILL");
  await exited(pid, 5_000);
}

function handle(line) {
  if (!line.trim()) return;
  let command;
  try {
    command = JSON.parse(line);
  } catch {
    return;
  }
  if (command.watch && Number.isInteger(command.watch.pid)) watched.push(command.watch);
  if (Number.isInteger(command.forget)) {
    const i = watched.findIndex((entry) => entry.pid === command.forget);
    if (i >= 0) watched.splice(i, 1);
  }
  if (typeof command.remove === "string") removals.add(command.remove);
  if (typeof command.keep === "string") removals.delete(command.keep);
}

let buffered = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => {
  buffered += chunk;
  const lines = buffered.split("\n");
  buffered = lines.pop();
  for (const line of lines) handle(line);
});
process.stdin.on("error", () => {});
process.stdin.on("close", async () => {
  handle(buffered);
  const stages = [...new Set(watched.map((entry) => entry.stage ?? 0))].sort((a, b) => a - b);
  for (const stage of stages) {
    await Promise.all(watched.filter((entry) => (entry.stage ?? 0) === stage).map(reap));
  }
  for (const dir of removals) fs.rmSync(dir, { recursive: true, force: true });
  process.exit(0);
});
