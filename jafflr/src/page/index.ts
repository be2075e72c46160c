import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Express, Response } from "express";
import { methodNotAllowed, type OpenAPIRegistry, z } from "tpi";
import type { AppDeps } from "../app";
import { DONENESS } from "../grill";
import { stallHub } from "./hub";

/**
 * Gita's stall page: `GET /` for a browser (API clients get the JSON of the route app.ts mounts
 * after this) with the stall rendered in, its hashed assets, and `GET /stall/events`, the stream
 * that keeps pages live.
 */
export function stallPage(deps: AppDeps) {
  const hub = stallHub(deps);
  // The source maps are not served; their comments would only make devtools ask for them.
  const source = (file: string) =>
    built(`browser/${file}`).replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n");
  const render = asset("js", "text/javascript", source("render.mjs"));
  // The script imports the renderer by the URL that names its content.
  const js = source("stall.mjs").replace(`"./render.mjs"`, `"${render.url}"`);
  if (!js) deps.logger.warn("stall page not built (`npm run build -w jafflr`): it loads lifeless");
  const script = asset("js", "text/javascript", js);
  const styles = asset("css", "text/css", built("static/stall.css"));
  const fixed: Record<string, string> = {
    styles: styles.url,
    script: script.url,
    doneness: DONENESS.map((d) => `<option value="${d}">${d}</option>`).join(""),
  };
  const template = built("static/stall.html");
  // The same renderer the script uses; an ES module, so imported (a require cannot load it).
  const renderer = import("./browser/render.mjs");
  /** The page with the stall as it is now; the script keeps it live from there. */
  const page = async () => {
    const parts = { ...(await renderer).renderParts(await hub.view()), ...fixed };
    parts.now = new Date().toISOString().slice(11, 19);
    return template.replace(/\{\{([a-z-]+)\}\}/g, (_, name: string) => parts[name] ?? "");
  };

  return {
    onToastie: hub.toastie,
    mount(app: Express) {
      app.get("/", async (req, res, next) => {
        // The same URL answers two media types, so caches must key on Accept.
        res.vary("Accept");
        // accepts() picks by quality, then by this list's order: `*/*` or no Accept gets JSON.
        if (req.accepts(["application/json", "text/html"]) !== "text/html") return next();
        pageHeaders(res, "no-cache")
          .type("html")
          .send(await page());
      });
      app.get("/stall/assets/:asset", (req, res, next) => {
        const found = [script, render, styles].find((a) => a.url === req.path);
        if (!found) return next(); // an old hash, or no such file: tpi's 404
        pageHeaders(res, IMMUTABLE).type(found.type).send(found.body); // the URL names the content
      });
      app.get("/stall/events", async (req, res) => {
        if (req.method !== "HEAD") return hub.open(req, res);
        res.type("text/event-stream").set("Cache-Control", "no-store").end();
      });
      app.all("/stall/events", methodNotAllowed(["GET", "HEAD"]));
    },
  };
}

const IMMUTABLE = "public, max-age=31536000, immutable";
/** Nothing on the page comes from anywhere but jafflr, and no inline script can run. */
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";
const SAFE = { "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff" };
const pageHeaders = (res: Response, cacheControl: string) =>
  res.set({ ...SAFE, "Referrer-Policy": "no-referrer", "Cache-Control": cacheControl });

/** jafflr's build puts the page in dist/page/ (script compiled, static/ copied); tests read it there. */
function built(file: string): string {
  const found = path.resolve(__dirname, "../../dist/page", file);
  return existsSync(found) ? readFileSync(found, "utf8") : "";
}

function asset(ext: string, type: string, body: string) {
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  return { url: `/stall/assets/stall.${hash}.${ext}`, type: `${type}; charset=utf-8`, body };
}

const header = (description: string, value?: string) => ({
  description,
  schema: { type: "string" as const, ...(value && { const: value }) },
});
const csp = header("Nothing from outside jafflr, no inline script.", CSP);
const text = z.string();
const problem = {
  "application/problem+json": { schema: { $ref: "#/components/schemas/Problem" } },
};

/** GET /'s 200 answer for a browser, for app.ts's own description of GET /. */
export const stallPageRoot = {
  headers: { Vary: header("Always includes Accept."), "Content-Security-Policy": csp },
  content: { "text/html": { schema: text.describe("Gita's stall page.") } },
};

export function registerStallRoutes(registry: OpenAPIRegistry): void {
  registry.registerPath({
    method: "get",
    path: "/stall/assets/{asset}",
    summary: "The page's script or stylesheet, named by its content hash, so cached for good.",
    request: { params: z.object({ asset: z.string().regex(/^stall\.[0-9a-f]{12}\.(js|css)$/) }) },
    responses: {
      200: {
        description: "The asset.",
        headers: { "Cache-Control": header("", IMMUTABLE), "Content-Security-Policy": csp },
        content: { "text/javascript": { schema: text }, "text/css": { schema: text } },
      },
      404: { description: "No such asset (e.g. an older hash).", content: problem },
    },
  });
  const retryAfter = { "Retry-After": header("Seconds.") };
  registry.registerPath({
    method: "get",
    path: "/stall/events",
    summary:
      "Server-Sent Events: `snapshot` (grill, stock, cold, the last 20 toasties, the meter: toasties done via v1 and v2 per 10 s for 10 minutes), then `grill`, `stock`, `cold` and `toastie` as they change and the whole `meter` on each toastie and every 10 s, one line of JSON each; ends when jafflr drains.",
    responses: {
      200: {
        description: "The event stream.",
        headers: { "Cache-Control": header("", "no-store") },
        content: { "text/event-stream": { schema: text } },
      },
      503: {
        description: "jafflr is shutting down, or has STALL_STREAMS_MAX streams open.",
        ...{ headers: retryAfter, content: problem },
      },
    },
  });
}
