/** What the numbers were measured on: they mean nothing without it. */
import { readFileSync } from "node:fs";
import os from "node:os";
import pg from "pg";
import type { ServiceNode } from "./node-runtime";

export interface Machine {
  date: string;
  cpus: number;
  cpuModel: string;
  memoryGiB: number;
  loadAverage: string;
  kernel: string;
  node: string;
  postgres: string;
}

export async function describeMachine(databaseUrl: string): Promise<Machine> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  let postgres: string;
  try {
    const { rows } = await client.query<{ version: string }>("SELECT version()");
    postgres = rows[0]?.version.split(" on ")[0] ?? "unknown";
  } finally {
    await client.end();
  }
  return {
    date: new Date().toISOString(),
    cpus: os.availableParallelism(),
    cpuModel: cpuModel(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: loadAverage(),
    kernel: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgres,
  };
}

/** 1, 5 and 15 minute load averages: how busy the neighbours were. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
}

function cpuModel(): string {
  try {
    const info = readFileSync("/proc/cpuinfo", "utf8");
    return /^model name\s*:\s*(.+)$/m.exec(info)?.[1]?.trim() ?? os.cpus()[0]?.model ?? "unknown";
  } catch {
    return os.cpus()[0]?.model ?? "unknown";
  }
}

/** `serviceNode`: what the services ran on (--node); the bench and its load generator run on m.node. */
export function machineLines(m: Machine, serviceNode: ServiceNode): string[] {
  const node =
    serviceNode.path === process.execPath
      ? `services, bench and load generator ${m.node} (${serviceNode.source})`
      : `services ${serviceNode.version} (${serviceNode.source}); bench and load generator ${m.node}`;
  return [
    `- Date: ${m.date}`,
    `- CPU: ${m.cpus} × ${m.cpuModel} (nproc ${m.cpus}); load average (1/5/15 min) at start ${m.loadAverage}, at end ${loadAverage()}`,
    `- Memory: ${m.memoryGiB} GiB`,
    `- OS: ${m.kernel}`,
    `- Node: ${node}`,
    `- PostgreSQL: ${m.postgres} (the machine's server on 127.0.0.1:5432, shared)`,
  ];
}
