// `tsx scripts/delivery/dora.ts <environment>`: the four delivery figures of the last 30 days, as a
// Markdown table for Deploy's job summary, from the deployments deployments.sh records (GitHub
// marks a superseded success "inactive", so every status of a deployment is read, not the latest).
import { execFileSync } from "node:child_process";

export type Deployment = {
  payload: string | null;
  commit: { committedDate: string };
  statuses: { nodes: { state: string; createdAt: string }[] };
};
const DAY = 86_400_000;
const QUERY = `query($owner: String!, $name: String!, $env: String!) { repository(owner: $owner, name: $name) {
  deployments(environments: [$env], first: 100, orderBy: {field: CREATED_AT, direction: DESC}) {
    nodes { createdAt payload commit { committedDate } statuses(first: 10) { nodes { state createdAt } } } } } }`;

const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const duration = (ms?: number) => (ms === undefined ? "–" : `${Math.round(ms / 6e4)} min`);

/** Only runs with versions count (not GitHub's own records of a job's environment), oldest first. */
export function figures(nodes: Deployment[], now: Date) {
  const runs = nodes
    .map((d) => {
      const end = d.statuses.nodes.find((s) => /^(SUCCESS|FAILURE|ERROR)$/.test(s.state));
      const versions = JSON.stringify(JSON.parse(d.payload || "{}").versions ?? null);
      return { ...d, ok: end?.state === "SUCCESS", at: Date.parse(end?.createdAt ?? ""), versions };
    })
    .filter((r) => r.versions !== "null" && now.getTime() - r.at <= 30 * DAY) // NaN: unfinished
    .sort((a, b) => a.at - b.at);
  const leads: number[] = [];
  const restores: number[] = [];
  let [failed, last, brokenSince] = [0, "", Number.NaN];
  for (const run of runs) {
    if (!run.ok) {
      failed++;
      if (Number.isNaN(brokenSince)) brokenSince = run.at;
    } else if (run.versions !== last) {
      // A success with the versions already running deployed nothing ("nothing to deploy").
      leads.push(run.at - Date.parse(run.commit.committedDate));
      if (!Number.isNaN(brokenSince)) restores.push(run.at - brokenSince);
      [last, brokenSince] = [run.versions, Number.NaN];
    }
  }
  const unrestored = !Number.isNaN(brokenSince);
  return { ok: leads.length, failed, lead: median(leads), restore: median(restores), unrestored };
}

export function summary(environment: string, f: ReturnType<typeof figures>) {
  const all = f.ok + f.failed;
  return [
    `### Delivery figures, last 30 days (${environment})\n\n| figure | value |\n| --- | --- |`,
    `| deployment frequency | ${f.ok} successful deploys (${((f.ok * 7) / 30).toFixed(1)} a week) |`,
    `| lead time, commit to successful deploy (median) | ${duration(f.lead)} |`,
    `| change failure rate | ${all ? Math.round((100 * f.failed) / all) : 0} % (${f.failed} of ${all}) |`,
    `| time to restore, failed deploy to next success (median) | ${duration(f.restore)}${f.unrestored ? ", and failing now" : ""} |`,
  ].join("\n");
}

// Run as a command (by tsx, or Node's own type stripping), not imported by its test.
if (process.argv[1]?.endsWith("dora.ts")) {
  const [owner, name] = (process.env.GITHUB_REPOSITORY ?? "").split("/");
  const env = process.argv[2] ?? "kind";
  const fields = [`query=${QUERY}`, `owner=${owner}`, `name=${name}`, `env=${env}`];
  const args = ["api", "graphql", ...fields.flatMap((field) => ["-f", field])];
  const answer = JSON.parse(execFileSync(process.env.GH ?? "gh", args, { encoding: "utf8" }));
  console.log(summary(env, figures(answer.data.repository.deployments.nodes, new Date())));
}
