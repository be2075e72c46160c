/**
 * bench/apps/ compiled to plain JavaScript, so the apps run under bare `node` like the services
 * (tsx's loader thread would add its own memory and CPU to the measurement). Shared by the cases
 * that launch an app (instrumentation, pick-v1), and compiled once per bench run.
 */
import path from "node:path";
import type { Context } from "./harness";
import { type Launched, launch } from "./launch";
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

/**
 * One of bench/apps/ (e.g. "bare-pick-v1"), compiled, started once per bench run as a shared
 * service named `name`, and CPU-profiled with --profile like the main services.
 */
export function startApp(
  ctx: Context,
  opts: {
    name: string;
    app: string;
    args?: string[];
    env?: Record<string, string>;
    readyPath: string;
  },
): Promise<Launched> {
  return ctx.service(opts.name, async () => {
    const dir = await compileApps(ctx);
    return launch({
      name: opts.name,
      args: [
        ...(ctx.profiled
          ? [
              "--cpu-prof",
              `--cpu-prof-dir=${path.join(ctx.workDir, "profiles")}`,
              `--cpu-prof-name=${opts.name}.${Date.now()}.cpuprofile`,
            ]
          : []),
        path.join(dir, `${opts.app}.js`),
        ...(opts.args ?? []),
      ],
      env: {
        PATH: process.env.PATH ?? "",
        HOME: process.env.HOME ?? "",
        NODE_ENV: "production",
        ...opts.env,
      },
      logFile: path.join(ctx.workDir, `${opts.name}.log`),
      readyPath: opts.readyPath,
    });
  });
}
