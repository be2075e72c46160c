/**
 * bench/apps/ compiled to plain JavaScript, so the apps run under bare `node` like the services
 * (tsx's loader thread would add its own memory and CPU to the measurement). Shared by the cases
 * that launch an app (instrumentation, pick-v1), and compiled once per bench run.
 */
import path from "node:path";
import type { Context } from "./harness";
import { run } from "./load";

let compiled: Promise<string> | undefined;

/** The folder holding the compiled apps (bench/.cache/apps/<name>.js). */
export function compileApps(ctx: Context): Promise<string> {
  compiled ??= (async () => {
    const tsc = path.join(ctx.repoRoot, "node_modules", ".bin", "tsc");
    const { code, stdout, stderr } = await run(tsc, [
      "-p",
      path.join(ctx.repoRoot, "bench", "apps", "tsconfig.json"),
    ]);
    if (code !== 0) throw new Error(`compiling bench/apps failed:\n${stdout}${stderr}`);
    return path.join(ctx.repoRoot, "bench", ".cache", "apps");
  })();
  return compiled;
}
