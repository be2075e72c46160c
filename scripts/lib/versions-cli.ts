// Entry point behind scripts/last-commit and scripts/affected (see those wrappers for usage).
import { openRepo } from "./git";
import { affectedServices, allVersions, lastCommit } from "./versions";

const USAGE: Record<string, string> = {
  "last-commit": [
    "usage: scripts/last-commit <service> [rev]   print the service's last relevant commit (its version)",
    "       scripts/last-commit --all [rev]       print '<service> <version>' for every service",
  ].join("\n"),
  affected: [
    "usage: scripts/affected <base> <head>",
    "       print the services whose last relevant commit differs between base and head, one per line",
  ].join("\n"),
};

function run(command: string, args: string[]): string[] {
  const repo = openRepo();
  if (command === "last-commit") {
    const [first, rev, ...rest] = args;
    if (first === undefined || rest.length > 0 || (first.startsWith("-") && first !== "--all")) {
      throw new UsageError();
    }
    if (first === "--all") {
      return allVersions(repo, rev).map(({ service, version }) => `${service} ${version}`);
    }
    return [lastCommit(repo, first, rev)];
  }
  if (command === "affected") {
    const [base, head, ...rest] = args;
    if (base === undefined || head === undefined || rest.length > 0) throw new UsageError();
    return affectedServices(repo, base, head);
  }
  throw new UsageError();
}

class UsageError extends Error {}

const [command = "", ...args] = process.argv.slice(2);
if (args.includes("-h") || args.includes("--help")) {
  process.stdout.write(`${USAGE[command] ?? ""}\n`);
} else {
  try {
    const lines = run(command, args);
    if (lines.length > 0) process.stdout.write(`${lines.join("\n")}\n`);
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${USAGE[command] ?? `unknown command: ${command}`}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`${command}: ${(error as Error).message}\n`);
      process.exitCode = 1;
    }
  }
}
