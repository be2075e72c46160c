/**
 * Both services exporting traces (OTLP/HTTP) to a receiver this test runs: one toastie is one
 * trace across jafflr, chillybin and PostgreSQL. And both /metrics count requests under route
 * templates with the version label.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { eventually } from "testkit/eventually";
import {
  type OtlpReceiver,
  type ReceivedSpan,
  SPAN_KIND,
  startOtlpReceiver,
} from "../src/otlp-receiver";
import { find, requestCount, scrapeStall } from "../src/prometheus";
import { needsOwnProcesses, type Stall, startStall } from "../src/stall";

const VERSIONS = { jafflr: "9.9.9-it.jafflr", chillybin: "9.9.9-it.chillybin" };

describe("shared tracing and metrics", needsOwnProcesses, () => {
  let receiver: OtlpReceiver;
  let stall: Stall;

  before(async () => {
    receiver = await startOtlpReceiver();
    const otel = { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_BSP_SCHEDULE_DELAY: "200" };
    stall = await startStall({
      chillybinEnv: { ...otel, VERSION: VERSIONS.chillybin },
      jafflrEnv: { ...otel, VERSION: VERSIONS.jafflr },
    });
    await stall.chillybinArrange.post("/restock");
  });

  after(async () => {
    await stall?.stop();
    await receiver?.close();
  });

  test("one v2 toastie is ONE trace: jafflr server + client spans, chillybin server span, pg queries", async () => {
    const reply = await stall.jafflrAct.post("/toastie", {
      json: { customer: "gita", ingredients: ["cheese", "vegemite"] },
    });
    assert.equal(reply.status, 200, `${reply.status} ${reply.text}`);
    assert.equal(reply.body.pickedVia, "v2");

    const described = () =>
      `spans received:\n${receiver
        .spans()
        .map(
          (s) =>
            `  ${s.traceId} ${s.spanId}<-${s.parentSpanId || "root"} ${serviceOf(s)} kind=${s.kind} ${s.name}`,
        )
        .join(
          "\n",
        )}\nrejected exports: ${receiver.rejected().join("; ") || "none"}\n${stall.logs()}`;

    // Spans arrive in batches (OTEL_BSP_SCHEDULE_DELAY): wait for the whole trace.
    const { toastie, trace } = await eventually(
      async () => {
        const toastie = receiver
          .spans()
          .find(
            (s) =>
              serviceOf(s) === "jafflr" && s.kind === SPAN_KIND.SERVER && isRoute(s, "/toastie"),
          );
        if (!toastie) return undefined;
        const trace = receiver.trace(toastie.traceId);
        const complete =
          trace.some((s) => serviceOf(s) === "jafflr" && s.kind === SPAN_KIND.CLIENT) &&
          trace.some((s) => serviceOf(s) === "chillybin" && s.kind === SPAN_KIND.SERVER) &&
          trace.some((s) => serviceOf(s) === "chillybin" && isPgSpan(s));
        return complete ? { toastie, trace } : undefined;
      },
      {
        timeoutMs: 10_000,
        intervalMs: 100,
        message: () => `no complete toastie trace\n${described()}`,
      },
    );

    assert.equal(toastie.parentSpanId, "", "jafflr's server span starts the trace");
    const byId = new Map(trace.map((s) => [s.spanId, s]));
    const descends = (span: ReceivedSpan, ancestor: ReceivedSpan) => {
      for (let s: ReceivedSpan | undefined = span; s; s = byId.get(s.parentSpanId)) {
        if (s.spanId === ancestor.spanId) return true;
      }
      return false;
    };

    const clients = trace.filter((s) => serviceOf(s) === "jafflr" && s.kind === SPAN_KIND.CLIENT);
    const pick = clients.find((s) => urlOf(s).includes("/v2/pick"));
    assert.ok(pick, `jafflr's client span for POST /v2/pick\n${described()}`);
    assert.ok(descends(pick, toastie), "the client span is inside jafflr's server span");

    const servers = trace.filter(
      (s) => serviceOf(s) === "chillybin" && s.kind === SPAN_KIND.SERVER,
    );
    assert.equal(servers.length, 1, `one chillybin server span in the trace\n${described()}`);
    const [chillybinServer] = servers as [ReceivedSpan];
    assert.ok(
      isRoute(chillybinServer, "/v2/pick"),
      `chillybin's span is for /v2/pick: ${chillybinServer.name}`,
    );
    assert.equal(
      chillybinServer.parentSpanId,
      pick.spanId,
      "chillybin continues the trace from jafflr's client span (W3C traceparent)",
    );

    const queries = trace.filter((s) => serviceOf(s) === "chillybin" && isPgSpan(s));
    assert.ok(
      queries.some((s) => /UPDATE ingredients/i.test(statementOf(s))),
      `the stock update is among the pg spans\n${described()}`,
    );
    for (const query of queries) {
      assert.equal(query.kind, SPAN_KIND.CLIENT, `pg span ${query.name} is a client span`);
      assert.ok(
        descends(query, chillybinServer),
        `pg span ${query.name} is inside chillybin's request`,
      );
    }

    // ONE trace: chillybin served this toastie's pick nowhere else.
    const picksElsewhere = receiver
      .spans()
      .filter(
        (s) =>
          serviceOf(s) === "chillybin" &&
          s.kind === SPAN_KIND.SERVER &&
          isRoute(s, "/v2/pick") &&
          s.traceId !== toastie.traceId,
      );
    assert.deepEqual(picksElsewhere, [], "no /v2/pick server span outside the toastie's trace");
  });

  test("both /metrics count the requests under route templates, with the version label", async () => {
    const before = await scrape();
    const v2 = await stall.jafflrAct.post("/toastie", {
      json: { customer: "gita", ingredients: ["cheese"] },
    });
    assert.equal(v2.body.pickedVia, "v2", v2.text);
    const after = await scrape();

    const delta = (service: "jafflr" | "chillybin", labels: Record<string, string>) =>
      requestCount(after[service], labels) - requestCount(before[service], labels);
    assert.equal(delta("jafflr", { method: "POST", route: "/toastie", status_code: "200" }), 1);
    assert.equal(delta("chillybin", { method: "POST", route: "/v2/pick", status_code: "200" }), 1);
    // (a v1 toastie's four GET /pick: toastie-pick-v1.test.ts)

    for (const service of ["jafflr", "chillybin"] as const) {
      const requests = find(after[service], "http_requests_total");
      assert.ok(requests.length > 0, `${service} exposes http_requests_total`);
      for (const sample of requests) {
        assert.equal(sample.labels.version, VERSIONS[service], `${service} version label`);
        assert.doesNotMatch(
          sample.labels.route ?? "",
          /\?|\/\d+$/,
          "route templates, never raw URLs",
        );
      }
    }
  });

  const scrape = () => scrapeStall(stall);
});

function serviceOf(span: ReceivedSpan): unknown {
  return span.resource["service.name"];
}

/** The route template, as the http/express instrumentation records it. */
function isRoute(span: ReceivedSpan, route: string): boolean {
  return span.attributes["http.route"] === route || span.name.endsWith(` ${route}`);
}

function urlOf(span: ReceivedSpan): string {
  return String(span.attributes["url.full"] ?? span.attributes["http.url"] ?? "");
}

function statementOf(span: ReceivedSpan): string {
  return String(span.attributes["db.query.text"] ?? span.attributes["db.statement"] ?? "");
}

function isPgSpan(span: ReceivedSpan): boolean {
  return (
    span.scope.includes("instrumentation-pg") ||
    span.attributes["db.system"] === "postgresql" ||
    span.attributes["db.system.name"] === "postgresql"
  );
}
