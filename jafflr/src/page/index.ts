import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import type { Express, Response } from "express";
import { methodNotAllowed } from "tpi";
import type { AppDeps } from "../app";
import type { ToastieOutcome } from "../toastie";
import { stallHtml } from "./html";
import { StallHub, type StallHubDeps } from "./hub";
import { STALL_CSS } from "./styles";

/**
 * Gita's stall page: `GET /` for a browser (an Accept that prefers text/html; every API client
 * still gets jafflr's JSON from the route mounted after this), its two assets, and
 * `GET /stall/events`, the Server-Sent Events stream that keeps every open page live.
 *
 * app.ts wires it in two places: its onToastie goes to the toastie server (it feeds the recent
 * toasties, then tells deps.onToastie as before), and mount(app) comes before the JSON `GET /`.
 */
export interface StallPage {
  onToastie(outcome: ToastieOutcome): void;
  mount(app: Express): void;
}

export function stallPage(deps: AppDeps, hubOptions: Pick<StallHubDeps, "watch"> = {}): StallPage {
  const hub = new StallHub({
    chillybinUrl: deps.config.CHILLYBIN_URL,
    logger: deps.logger,
    lifecycle: deps.lifecycle,
    grill: deps.grill,
    registry: deps.metrics.registry,
    ...hubOptions,
  });
  const assets = stallAssets(deps.logger);
  const html = stallHtml({ script: assets.script.url, styles: assets.styles.url });
  const byUrl = new Map([assets.script, assets.styles].map((a) => [a.url, a]));

  const mount = (app: Express) => {
    app.get("/", (req, res, next) => {
      // The same URL answers two media types, so caches must key on Accept.
      res.vary("Accept");
      // accepts() picks by quality, then by this list's order: `*/*` or no Accept gets JSON.
      if (req.accepts(["application/json", "text/html"]) !== "text/html") return next();
      pageHeaders(res);
      res.setHeader("Cache-Control", "no-cache");
      res.type("html").send(html);
    });

    app.get("/stall/assets/:asset", (req, res, next) => {
      const asset = byUrl.get(req.path);
      if (!asset) return next(); // an old hash, or no such file: tpi's 404
      pageHeaders(res);
      // The URL carries the content's hash, so a browser may keep it for good.
      res.setHeader("Cache-Control", "public, max-age=31536000, immutable");
      res.type(asset.type).send(asset.body);
    });

    app.get("/stall/events", (req, res) => {
      if (req.method === "HEAD") {
        res.type("text/event-stream").setHeader("Cache-Control", "no-store");
        res.end();
        return;
      }
      hub.open(res);
    });
    app.all("/stall/events", methodNotAllowed(["GET", "HEAD"]));
  };

  return {
    onToastie(outcome) {
      hub.toastie(outcome);
      deps.onToastie?.(outcome);
    },
    mount,
  };
}

/** Nothing on the page comes from anywhere but jafflr, and no inline script can run. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

function pageHeaders(res: Response) {
  res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("Referrer-Policy", "no-referrer");
}

interface Asset {
  url: string;
  type: string;
  body: string;
}

/**
 * The browser script is compiled by jafflr's build to dist/page/browser/stall.mjs. Run from src
 * (tsx, in tests) the compiled file is the built one in dist/; without a build the page still
 * loads, only lifeless, and the log says why.
 */
function stallAssets(logger: AppDeps["logger"]): { script: Asset; styles: Asset } {
  const candidates = [
    path.join(__dirname, "browser", "stall.mjs"),
    path.resolve(__dirname, "..", "..", "dist", "page", "browser", "stall.mjs"),
  ];
  const found = candidates.find((file) => existsSync(file));
  let script = "";
  if (found) {
    // The source map is not served; its comment would only make devtools ask for it.
    script = readFileSync(found, "utf8").replace(/\n\/\/# sourceMappingURL=.*\s*$/, "\n");
  } else {
    logger.warn(
      { looked: candidates },
      "stall page script not built: run `npm run build -w jafflr`",
    );
  }
  return {
    script: asset("stall", "js", "text/javascript; charset=utf-8", script),
    styles: asset("stall", "css", "text/css; charset=utf-8", STALL_CSS),
  };
}

function asset(name: string, ext: string, type: string, body: string): Asset {
  const hash = createHash("sha256").update(body).digest("hex").slice(0, 12);
  return { url: `/stall/assets/${name}.${hash}.${ext}`, type, body };
}
