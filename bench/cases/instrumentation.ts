/**
 * Target 2: what tpi's instrumentation costs. Two processes with the same express settings and
 * routes — tpi's app (tracing, request context, access log at info to a file, RED metrics) and
 * plain express (bench/apps/) — serving /health (a probe: logged and counted, not traced) and
 * /hello (a traced route, called with a W3C traceparent as jafflr calls chillybin).
 *
 * "Still logged, counted and traced" is checked, not assumed: after the load, the tpi app's log
 * must hold an access line per answered request, its /metrics a count per answered request, and
 * a request sent with a traceparent must log that trace id.
 */
import { readFileSync } from "node:fs";
import { startApp } from "../compile-apps";
import { measuredRow, ratioTarget } from "../figures";
import { type BenchCase, conns } from "../harness";
import { type Launched, sleep } from "../launch";
import { httpLoad } from "../load";
import type { Row } from "../report";

const CONNECTIONS = 10;
const ROUTES = ["health", "hello"] as const;
/** The parent a traced request arrives with (sampled), as from an upstream service. */
const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;
const PROBE_TRACE_ID = "0af7651916cd43dd8448eb211c80319c";

const apps = new Map<"tpi" | "bare", Launched>();

const instrumentation: BenchCase = {
  name: "instrumentation",
  byDefault: true,
  async setup(ctx) {
    for (const key of ["tpi", "bare"] as const) {
      const server = await startApp(ctx, {
        name: `app-${key}`,
        app: key === "bare" ? "bare" : "instrumented",
        env: { LOG_LEVEL: "info" },
        readyPath: "/health",
      });
      apps.set(key, server);
    }
  },
  runs() {
    return ROUTES.flatMap((route) =>
      (["tpi", "bare"] as const).map((key) => ({
        key: `${route}.${key}`,
        duration: "short" as const,
        measure: (durationS: number) => {
          const server = apps.get(key) as Launched;
          return httpLoad({
            url: `${server.url}/${route}`,
            headers: route === "hello" ? { traceparent: TRACEPARENT } : {},
            connections: CONNECTIONS,
            durationS,
            processes: [server],
          });
        },
      })),
    );
  },
  async report(_ctx, results) {
    const rows: Row[] = [];
    for (const route of ROUTES) {
      const label = route === "hello" ? "GET /hello (traced, with traceparent)" : "GET /health";
      rows.push(
        ...measuredRow(
          results,
          "instr",
          `${route}.bare`,
          `${label}, bare express, ${conns(CONNECTIONS)}`,
        ),
        ...measuredRow(results, "instr", `${route}.tpi`, `${label}, tpi, ${conns(CONNECTIONS)}`),
      );
    }
    const check = apps.has("tpi")
      ? await observed(apps.get("tpi") as Launched, results)
      : undefined;
    const targets = [
      ratioTarget(
        results,
        { n: 2, what: "tpi ÷ bare express, GET /health", goal: { op: ">=", value: 0.8 } },
        "health.tpi",
        "health.bare",
      ),
      ratioTarget(
        results,
        { n: 2, what: "tpi ÷ bare express, traced GET /hello", goal: { op: ">=", value: 0.8 } },
        "hello.tpi",
        "hello.bare",
      ),
    ];
    return {
      rows,
      targets,
      notes: [
        "- instr: tpi's app is bench/apps/instrumented.ts (tpi/register first, as the services do), bare express is bench/apps/bare.ts; no OTLP exporter is configured (as in this repo's default runs), so spans are made and sampled but not sent.",
        `- instr: still observed after the load (tpi app) — ${check ?? "not checked"}.`,
      ],
    };
  },
};
export default instrumentation;

/**
 * Logged: an access line per answered request (warm-up ones included, so ≥). Counted: /metrics'
 * http_requests_total for each route ≥ answered. Traced: a request with a traceparent logs its
 * trace id (the W3C context was continued, not replaced).
 */
async function observed(app: Launched, results: import("../harness").Results): Promise<string> {
  const answered = (route: string) => results.get(`${route}.tpi`).reduce((n, s) => n + s.ok, 0);
  const probe = await fetch(`${app.url}/hello`, {
    headers: { traceparent: `00-${PROBE_TRACE_ID}-b7ad6b7169203331-01` },
    signal: AbortSignal.timeout(5_000),
  });
  await probe.text();
  const metrics = await (
    await fetch(`${app.url}/metrics`, { signal: AbortSignal.timeout(5_000) })
  ).text();
  // Logs may be buffered: give the writer a moment to flush.
  let log = "";
  for (let i = 0; i < 50; i++) {
    log = readFileSync(app.logFile, "utf8");
    if (log.includes(PROBE_TRACE_ID)) break;
    await sleep(100);
  }
  const parts: string[] = [];
  for (const route of ROUTES) {
    const lines = log.split("\n").filter((l) => l.includes(`"route":"/${route}"`)).length;
    const counted = [
      ...metrics.matchAll(
        new RegExp(`^http_requests_total\\{[^}]*route="/${route}"[^}]*\\} (\\d+)`, "gm"),
      ),
    ].reduce((n, m) => n + Number(m[1]), 0);
    const ok = answered(route);
    parts.push(
      `/${route}: ${ok} answered, ${lines} access-log lines (${lines >= ok ? "ok" : "MISSING"}), ${counted} counted (${counted >= ok ? "ok" : "MISSING"})`,
    );
  }
  const traced = log
    .split("\n")
    .some((l) => l.includes(PROBE_TRACE_ID) && l.includes('"route":"/hello"'));
  parts.push(`traceparent continued into the log line: ${traced ? "yes" : "NO"}`);
  return parts.join("; ");
}
