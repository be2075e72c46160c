// Entry point behind scripts/delivery/last-commit and scripts/delivery/affected (see their usage).
import { affected, versions } from "./versions";

const USAGE: Record<string, string> = {
  "last-commit": [
    "usage: last-commit <service> [rev]   print the service's version (its last relevant commit)",
    "       last-commit --all [rev]       print '<service> <version>' for every service",
  ].join("\n"),
  affected:
    "usage: affected <base> <head>   print the services whose version differs, one per line",
};

function run(command: string, args: string[]): string[] | undefined {
  const cwd = process.cwd();
  const [first, second, ...rest] = args;
  if (first === undefined || rest.length > 0) return undefined;
  if (command === "affected")
    return second === undefined ? undefined : affected(cwd, first, second);
  if (command !== "last-commit") return undefined;
  const all = versions(cwd, second);
  if (first === "--all") return [...all].map(([service, version]) => `${service} ${version}`);
  const version = all.get(first);
  if (version === undefined) throw new Error(`unknown service: ${first}`);
  return [version];
}

const [command = "", ...args] = process.argv.slice(2);
if (args.includes("-h") || args.includes("--help")) {
  process.stdout.write(`${USAGE[command] ?? ""}\n`);
} else {
  try {
    const lines = run(command, args);
    if (lines === undefined) {
      process.stderr.write(`${USAGE[command] ?? `unknown command: ${command}`}\n`);
      process.exitCode = 2;
    } else if (lines.length > 0) {
      process.stdout.write(`${lines.join("\n")}\n`);
    }
  } catch (error) {
    process.stderr.write(`${command}: ${(error as Error).message}\n`);
    process.exitCode = 1;
  }
}
