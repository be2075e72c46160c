// The delivery figures from a recorded GraphQL answer (fixtures/deployments-graphql.json): two
// successes superseded ("inactive" now), a failure restored 30 minutes later, a success that
// deployed nothing new, a record of GitHub's own without versions, one older than 30 days, and a
// failure still unrestored.
import assert from "node:assert/strict";
import fs from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { type Deployment, figures, summary } from "../dora";
import { FakeTools, type Rule } from "./helpers";

const FIXTURE = join(__dirname, "fixtures", "deployments-graphql.json");
const nodes: Deployment[] = JSON.parse(fs.readFileSync(FIXTURE, "utf8")).data.repository.deployments
  .nodes;
const NOW = new Date("2026-12-05T03:00:00Z");
const MIN = 60_000;

test("each figure, from deployments with versions in the last 30 days, and its table row", () => {
  assert.deepEqual(figures(nodes, NOW), {
    ok: 3, // 20 Nov, 21 Nov and 1 Dec; 22 Nov ran the versions already running
    failed: 2,
    lead: 15 * MIN, // median of 12, 15 and 20 minutes from commit to its successful deploy
    restore: 30 * MIN, // 21 Nov: failed at 09:15, the next success at 09:45
    unrestored: true, // 4 Dec failed and nothing succeeded since
  });
  assert.deepEqual(summary("kind", figures(nodes, NOW)).split("\n").slice(4), [
    "| deployment frequency | 3 successful deploys (0.7 a week) |",
    "| lead time, commit to successful deploy (median) | 15 min |",
    "| change failure rate | 40 % (2 of 5) |",
    "| time to restore, failed deploy to next success (median) | 30 min, and failing now |",
  ]);
  assert.equal(figures(nodes.slice(1), NOW).unrestored, false);
  // No deployments yet: zeros and dashes, no division by zero.
  assert.match(summary("kind", figures([], NOW)), /0 % \(0 of 0\)[\s\S]*\| – \|/);
});

test("dora.ts asks GitHub for the environment's deployments and prints the table", () => {
  const answer: Rule = ["gh", "api graphql *", fs.readFileSync(FIXTURE, "utf8")];
  const env = { GITHUB_REPOSITORY: "octo-cat/toasties-galore" };
  const fakes = new FakeTools();
  try {
    const run = fakes.run("dora.ts", ["kind"], [answer], { env });
    assert.equal(run.status, 0, run.log);
    assert.match(
      run.calls.join("\n"),
      /^gh api graphql -f query=query[\s\S]* -f owner=octo-cat -f name=toasties-galore -f env=kind$/,
    );
    // Its window ends now, so only the table's shape is checked here.
    assert.match(
      run.stdout,
      /^### Delivery figures, last 30 days \(kind\)$[\s\S]*^\| change failure rate \| \d+ % \(\d+ of \d+\) \|$/m,
    );
  } finally {
    fakes.remove();
  }
});
