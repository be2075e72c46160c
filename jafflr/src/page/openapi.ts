/**
 * The stall page's routes in jafflr's OpenAPI document (src/openapi.ts spreads these in): the
 * page itself as GET /'s text/html answer, its hashed assets, and the event stream, with every
 * event the page receives described in the stream's schema.
 */
const securityHeaders = {
  "Content-Security-Policy": {
    description: "default-src 'self' and no inline script: the page loads nothing from outside.",
    schema: { type: "string" },
  },
  "X-Content-Type-Options": { schema: { type: "string", const: "nosniff" } },
};

/** Added to GET /'s 200 content: browsers (an Accept that prefers text/html) get the page. */
export const stallPageHtmlContent = {
  "text/html": {
    schema: { type: "string", description: "Gita's stall page (when Accept prefers text/html)." },
  },
};

/** GET /'s answer varies with Accept; these headers come with the page. */
export const stallPageRootHeaders = {
  Vary: { description: "Always includes Accept.", schema: { type: "string" } },
  "Cache-Control": { description: "`no-cache` on the page.", schema: { type: "string" } },
  ...securityHeaders,
};

/** A generic problem (type about:blank), in the shape the rest of the document uses. */
const blankProblem = (status: number, description: string) => ({
  description,
  content: {
    "application/problem+json": {
      schema: {
        allOf: [
          { $ref: "#/components/schemas/Problem" },
          { properties: { type: { enum: ["about:blank"] }, status: { const: status } } },
        ],
      },
    },
  },
});

export const stallPagePaths = {
  "/stall/assets/{asset}": {
    get: {
      summary: "The stall page's script or stylesheet, named by its content hash.",
      parameters: [
        {
          name: "asset",
          in: "path",
          required: true,
          schema: { type: "string", pattern: "^stall\\.[0-9a-f]{12}\\.(js|css)$" },
        },
      ],
      responses: {
        "200": {
          description: "The asset; cacheable for good (the URL changes with the content).",
          headers: {
            "Cache-Control": {
              schema: { type: "string", const: "public, max-age=31536000, immutable" },
            },
            ...securityHeaders,
          },
          content: {
            "text/javascript": { schema: { type: "string" } },
            "text/css": { schema: { type: "string" } },
          },
        },
        "404": blankProblem(404, "No such asset (e.g. an older hash)."),
      },
    },
  },
  "/stall/events": {
    get: {
      summary: "Server-Sent Events for the stall page: a snapshot, then every change.",
      description:
        "`retry: 1000`, then `event: snapshot` (grill, stock, cold-store connection, the last 20 toasties newest first, 300 one-second meter points), then `grill`, `stock`, `cold`, `toastie` (jafflr's ToastieOutcome) and one `meter` event per second ({t, v1, v2}: chillybin picks in that second). Each data field is one line of JSON. The stream ends when jafflr drains; EventSource reconnects and gets a fresh snapshot.",
      responses: {
        "200": {
          description: "The event stream (never ends on its own while jafflr runs).",
          headers: { "Cache-Control": { schema: { type: "string", const: "no-store" } } },
          content: { "text/event-stream": { schema: { type: "string" } } },
        },
        "503": {
          ...blankProblem(503, "jafflr is shutting down; connect again (Retry-After)."),
          headers: { "Retry-After": { schema: { type: "string", pattern: "^[0-9]+$" } } },
        },
      },
    },
  },
};
