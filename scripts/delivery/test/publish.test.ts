// publish.sh for real against a throwaway repository and a recording fake docker: which tags it
// takes for published, which it builds and pushes, and which registry answers stop it.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { FakeTools, fixtureRepo, type Rule } from "./helpers";

const REGISTRY = "ghcr.io/octo-cat/toasties-galore";
const repo = fixtureRepo();
const first = repo.git("rev-parse", "HEAD"); // chillybin's version; jafflr's until `head`
const head = repo.write("jafflr/src/grill.ts", "4").commit();
const fakes = new FakeTools();
const run = (args: string[], rules: Rule[] = [], env = {}) =>
  fakes.run("publish.sh", args, rules, { env, cwd: repo.dir });
after(() => {
  repo.remove();
  fakes.remove();
});

const inspect = (stderr: string, image = "*"): Rule => [
  "docker",
  `manifest inspect ${image}`,
  { exit: 1, stderr },
];
// What `docker manifest inspect` prints for a tag the registry lacks (ghcr.io), for a repository
// it has never heard of (a fork's first publish), and docker's own summary of either.
const MISSING = [
  "manifest unknown",
  "name unknown: repository name not known to registry",
  `no such manifest: ${REGISTRY}/jafflr:${head}`,
];

test("skips a tag the registry has; builds and pushes one it answers missing for, whichever way", () => {
  for (const missing of MISSING) {
    const r = run(
      [],
      [["docker", `manifest inspect ${REGISTRY}/chillybin:${first}`], inspect(missing)],
    );
    assert.equal(r.status, 0, r.log);
    assert.match(r.stdout, /chillybin: \S+ already published, skipping/);
    r.none(/build.*SERVICE=chillybin/);
    r.inOrder(
      /^docker build --provenance=false .*SERVICE=jafflr/,
      new RegExp(`^docker push ${REGISTRY}/jafflr:${head}$`),
    );
    assert.match(r.stdout, /published 1 image\(s\), 1 already published/);
  }
});

test("a missing tag whose tested candidate is in the registry is copied from it, not built", () => {
  const r = run([], [["docker", "manifest inspect *:candidate-*"], inspect("manifest unknown")]);
  assert.equal(r.status, 0, r.log);
  const tag = `${REGISTRY}/jafflr:`;
  r.at(new RegExp(`^docker buildx imagetools create .* -t ${tag}${head} ${tag}candidate-${head}$`));
  r.none(/^docker (build|push) /);
});

test("stops on any other registry answer instead of overwriting a tag", () => {
  for (const error of [
    "unauthorized: authentication required",
    "denied: requested access to the resource is denied",
    "toomanyrequests: rate limit",
    'Get "https://ghcr.io/v2/": dial tcp: lookup ghcr.io: no such host',
  ]) {
    const r = run([], [inspect(error)]);
    assert.equal(r.status, 1, r.log);
    assert.ok(
      r.stderr.includes(
        `cannot tell whether ${REGISTRY}/chillybin:${first} is published: ${error}`,
      ),
      r.log,
    );
    r.none(/^docker (build|push)/);
  }
});

test("--no-push (pull requests) builds every image and asks no registry", () => {
  const r = run(["--no-push"]);
  const build =
    /^docker build --provenance=false --file \S+ --build-arg SERVICE=(\w+) --build-arg VERSION=\w+ --tag \S+/;
  assert.deepEqual(
    r.calls.map((c) => build.exec(c)?.[1]),
    ["chillybin", "jafflr"],
    r.log,
  );
  assert.match(r.stdout, /built 2 image\(s\), pushed none/);
});

test("--dry-run --base plans only the affected services and changes nothing; a bad name fails", () => {
  const r = run(["--dry-run", "--base", first], [inspect("manifest unknown")]);
  assert.equal(r.status, 0, r.log);
  assert.match(r.stdout, /services affected since \w+: jafflr\n/);
  assert.match(r.stdout, new RegExp(`would run: docker push ${REGISTRY}/jafflr:${head}\\n`));
  r.none(/^docker (?!manifest inspect)/);
  assert.match(run(["--dry-run", "toaster"]).stderr, /unknown service: toaster/);
});

test("a clone whose origin is not on GitHub: --dry-run asks no registry; a real run says what to set", () => {
  repo.git("remote", "add", "origin", "https://git.example.org/ann/toasties-galore.git");
  try {
    const local = { IMAGE_REPOSITORY: "" };
    const dry = run(["--dry-run"], [inspect("connection refused")], local);
    assert.equal(dry.status, 0, dry.log);
    assert.match(dry.stdout, /^note: origin is not on GitHub: set IMAGE_REPOSITORY;/m);
    assert.match(dry.stdout, /would run: docker push localhost\/toasties-galore\/jafflr:\w+\n/);
    assert.deepEqual(dry.calls, [], "a dry run runs nothing");
    const real = run([], [], local);
    assert.equal(real.status, 1, real.log);
    assert.match(real.stderr, /origin is not on GitHub: set IMAGE_REPOSITORY/);
    assert.deepEqual(real.calls, []);
  } finally {
    repo.git("remote", "remove", "origin");
  }
});
