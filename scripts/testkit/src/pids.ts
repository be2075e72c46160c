/** Questions about other processes, for recovering from a run that was killed. */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";

/** Linux's /proc, or `ps` elsewhere; "" when the process is gone. */
function proc(pid: number, file: "stat" | "cmdline" | "comm", psField: string): string {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    if (file === "stat") return "";
    return (
      spawnSync("ps", ["-o", `${psField}=`, "-p", String(pid)], { encoding: "utf8" }).stdout ?? ""
    );
  }
}

/** Whether the process runs. A zombie (exited, not yet reaped by its parent) does not. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const stat = proc(pid, "stat", "");
  return !stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}

/** The process's full command line ("" when it is gone). */
export const commandLine = (pid: number) =>
  proc(pid, "cmdline", "command").split("\0").join(" ").trim();

/** The executable's name, e.g. "postgres" or "node" ("" when it is gone). */
export const commandName = (pid: number) => proc(pid, "comm", "comm").trim().split("/").pop() ?? "";
