import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Express, Response } from "express";
import { methodNotAllowed, type OpenAPIRegistry, z } from "tpi";
import type { AppDeps } from "../app";
import { DONENESS } from "../grill";
import type { ToastieOutcome } from "../toastie";
import { stallHub } from "./hub";

/**
 * Gita's stall page: `GET /` for a browser (an Accept that prefers text/html; API clients get
 * the JSON of the route mounted after this), its two hashed assets, and `GET /stall/events`,
 * the Server-Sent Events stream that keeps every open page live. app.ts sends its toasties
 * through onToastie and mounts this before its JSON `GET /`.
 */
export function stallPage(deps: AppDeps) {
  const { config, logger, lifecycle, grill, metrics } = deps;
  const chillybinUrl = config.CHILLYBIN_URL;
  const hub = stallHub({ chillybinUrl, logger, lifecycle, grill, registry: metrics.registry });
  const script = asset("js", "text/javascript; charset=utf-8", browserScript(logger));
  const styles = asset("css", "text/css; charset=utf-8", readStatic("stall.css"));
  const html = readStatic("stall.html")
    .replace("{{styles}}", styles.url)
    .replace("{{script}}", script.url)
    .replace("{{doneness}}", DONENESS.map((d) => `<option value="${d}">${d}</option>`).join(""));

  const mount = (app: Express) => {
    app.get("/", (req, res, next) => {
      // The same URL answers two media types, so caches must key on Accept.
      res.vary("Accept");
      // accepts() picks by quality, then by this list's order: `*/*` or no Accept gets JSON.
      if (req.accepts(["application/json", "text/html"]) !== "text/html") return next();
      pageHeaders(res, "no-cache").type("html").send(html);
    });
    app.get("/stall/assets/:asset", (req, res, next) => {
      const found = [script, styles].find((a) => a.url === req.path);
      if (!found) return next(); // an old hash, or no such file: tpi's 404
      // The URL carries the content's hash, so a browser may keep it for good.
      pageHeaders(res, "public, max-age=31536000, immutable").type(found.type).send(found.body);
    });
    app.get("/stall/events", async (req, res) => {
      if (req.method !== "HEAD") return hub.open(req, res);
      res.type("text/event-stream").setHeader("Cache-Control", "no-store");
      res.end();
    });
    app.all("/stall/events", methodNotAllowed(["GET", "HEAD"]));
  };

  return {
    onToastie(outcome: ToastieOutcome) {
      hub.toastie(outcome);
      deps.onToastie?.(outcome);
    },
    mount,
  };
}

/** Nothing on the page comes from anywhere but jafflr, and no inline script can run. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

function pageHeaders(res: Response, cacheControl: string): Response {
  return res.set({
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": cacheControl,
  });
}

/**
 * jafflr's build emits the browser script as dist/page/browser/stall.mjs; run from src (tsx,
 * in tests) it is the built one in dist/. Without a build the page loads, lifeless, and says why.
 */
function browserScript(logger: AppDeps["logger"]): string {
  const built = ["browser", path.join("..", "..", "dist", "page", "browser")]
    .map((dir) => path.join(__dirname, dir, "stall.mjs"))
    .find((file) => existsSync(file));
  if (!built) logger.warn("stall page script not built: run `npm run build -w jafflr`");
  // The source map is not served; its comment would only make devtools ask for it.
  return built ? readFileSync(built, "utf8").replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n") : "";
}

/** static/ holds the page's skeleton and stylesheet; jafflr's build copies it into dist/. */
function readStatic(name: string): string {
  const dirs = [
    path.join(__dirname, "static"),
    path.join(__dirname, "..", "..", "src", "page", "static"),
  ];
  const file = dirs.map((dir) => path.join(dir, name)).find((f) => existsSync(f));
  return readFileSync(file ?? name, "utf8");
}

function asset(ext: string, type: string, body: string) {
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  return { url: `/stall/assets/stall.${hash}.${ext}`, type, body };
}

const header = (description: string, value?: string) => ({
  description,
  schema: { type: "string" as const, ...(value ? { const: value } : {}) },
});
const csp = header("No inline script, nothing from outside jafflr.", CONTENT_SECURITY_POLICY);

/** GET /'s 200 answer for a browser, for app.ts to merge into its own description of GET /. */
export const stallPageRoot = {
  headers: {
    Vary: header("Always includes Accept."),
    "Cache-Control": header("`no-cache` on the page."),
    "Content-Security-Policy": csp,
  },
  content: {
    "text/html": {
      schema: z
        .string()
        .openapi({ description: "Gita's stall page (when Accept prefers text/html)." }),
    },
  },
};

/** The page's own routes in jafflr's OpenAPI document. */
export function registerStallRoutes(registry: OpenAPIRegistry): void {
  const problem = (description: string) => ({
    description,
    content: { "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } } },
  });
  registry.registerPath({
    method: "get",
    path: "/stall/assets/{asset}",
    summary: "The stall page's script or stylesheet, named by its content hash.",
    request: { params: z.object({ asset: z.string().regex(/^stall\.[0-9a-f]{12}\.(js|css)$/) }) },
    responses: {
      200: {
        description: "The asset; cacheable for good (the URL changes with the content).",
        headers: {
          "Cache-Control": header("Immutable.", "public, max-age=31536000, immutable"),
          "Content-Security-Policy": csp,
        },
        content: { "text/javascript": { schema: z.string() }, "text/css": { schema: z.string() } },
      },
      404: problem("No such asset (e.g. an older hash)."),
    },
  });
  registry.registerPath({
    method: "get",
    path: "/stall/events",
    summary: "Server-Sent Events for the stall page: a snapshot, then every change.",
    description:
      "`retry: 1000`, then `event: snapshot` (grill, stock, cold-store connection, the last 20 toasties newest first, 300 one-second meter points), then `grill`, `stock`, `cold`, `toastie` (jafflr's ToastieOutcome) and one `meter` event per second ({t, v1, v2}: chillybin picks in that second). Each data field is one line of JSON. The stream ends when jafflr drains; EventSource reconnects and gets a fresh snapshot.",
    responses: {
      200: {
        description: "The event stream (never ends on its own while jafflr runs).",
        headers: { "Cache-Control": header("Never cached.", "no-store") },
        content: { "text/event-stream": { schema: z.string() } },
      },
      503: {
        ...problem("jafflr is shutting down; connect again (Retry-After)."),
        headers: { "Retry-After": header("Seconds.") },
      },
    },
  });
}
