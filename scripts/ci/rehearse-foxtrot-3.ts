/**
 * `npm run rehearse:foxtrot-3`: proves that step 3 of the foxtrot (delete v1) still works.
 *
 * Copies this working tree (tracked files plus untracked, non-ignored ones) into a throwaway
 * directory, applies step 3 there exactly as docs/foxtrot.md lists it, then runs lint, typecheck,
 * the whole test suite and the browser suite (`npm run test:browser -w integration-tests`, the
 * stall page in Chromium) in the copy. CI runs it on every commit, so a change that ties anything
 * else to v1 — an import of a pick-v1 file, a test that needs v1, a second flag decision — fails
 * here, the day it is written, rather than the day someone finally deletes v1.
 *
 * The browser suite needs Chromium (CHROMIUM_PATH, or Debian's /usr/bin/chromium; .ci/run installs
 * it in the stage before this one). Without it the rehearsal says so, in its output and its last
 * line: it then proves less, and must not look as if it had proved it all; with CI=true it fails.
 *
 * Every expected file and line must be found exactly as described; anything missing or ambiguous
 * stops the rehearsal, so the guide and the code cannot drift apart silently.
 *
 *   npm run rehearse:foxtrot-3                  # apply, lint, typecheck, test, browser suite;
 *                                               # exit 1 on any failure
 *   npm run rehearse:foxtrot-3 -- --apply-only  # apply and print what changed, run nothing
 *   npm run rehearse:foxtrot-3 -- --keep        # keep the copy afterwards (printed), to look around
 *                                               # (otherwise it is removed, pass or fail)
 *
 * DATABASE_URL, when set, is passed on to the tests (each makes its own databases on that server).
 */
import { execFileSync, spawnSync } from "node:child_process";
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { CHROMIUM, hasChromium } from "testkit/chromium";

/** Folders whose `*pick-v1*` files step 3 deletes. */
const V1_FOLDERS = ["chillybin", "jafflr", "integration-tests", "bench", "scripts/delivery"];
/** Files that must be among them: each service's v1 code. */
const EXPECTED_V1_FILES = ["chillybin/src/pick-v1.ts", "jafflr/src/pick-v1.ts"];
const GUIDE = "docs/foxtrot.md";
const FLAG_FILE = "jafflr/flags/features.json";
const FLAG = "pick.v2";
/** chillybin: the route wiring. */
const CHILLYBIN_WIRING = { file: "chillybin/src/app.ts", line: "mountPickV1(" };
/** jafflr: the one place a toastie chooses its arm, which becomes v2 for everyone. */
const JAFFLR_DECISION = {
  file: "jafflr/src/toastie.ts",
  line: `"${FLAG}"`,
  becomes: "const pick = pickV2;",
};
/** jafflr: the flags its code may ask about; the flag's name leaves the code with it, none are left. */
const JAFFLR_FLAGS = {
  file: "jafflr/src/flags.ts",
  line: `export const FLAGS = ["${FLAG}"] as const;`,
  becomes: "export const FLAGS = [] as const;",
};
const V1_IMPORT = /^import\b[^;]*?\bfrom\s+"\.\/pick-v1(\.js)?";[^\S\n]*\n/gm;

class Drift extends Error {
  override name = "Drift";
}

const root = execFileSync("git", ["rev-parse", "--show-toplevel"], {
  cwd: __dirname,
  encoding: "utf8",
}).trim();
const args = new Set(process.argv.slice(2));
const applyOnly = args.has("--apply-only");
const keep = args.has("--keep");

main().catch((error) => {
  console.error(`rehearse-foxtrot-3: ${error instanceof Drift ? "" : "failed: "}${error.message}`);
  process.exit(1);
});

async function main() {
  const copy = mkdtempSync(path.join(tmpdir(), "foxtrot-3-"));
  // mkdtemp makes it private (700); the embedded PostgreSQL runs as another OS user when we are
  // root and must reach its binaries and data below it, as in a checkout anyone may enter.
  chmodSync(copy, 0o755);
  try {
    console.log(`Copying the working tree to ${copy}`);
    copyWorkingTree(copy);
    linkNodeModules(copy);
    commit(copy, "as it is now");

    const done = applyStep3(copy);
    console.log("\nStep 3 of the foxtrot, as docs/foxtrot.md lists it:");
    for (const line of done) console.log(`  ${line}`);
    commit(copy, "foxtrot step 3: delete v1");
    if (applyOnly) return;

    // After `npm test`, which builds what the browser suite starts.
    const browser = hasChromium();
    const runs: [string, string[]][] = [
      ["lint", ["run", "lint"]],
      ["typecheck", ["run", "typecheck"]],
      ["test", ["test", "--", "--continue"]],
    ];
    if (browser) runs.push(["browser suite", ["run", "test:browser", "-w", "integration-tests"]]);
    const failed: string[] = [];
    for (const [name, command] of runs) {
      console.log(`\n━━━ npm ${command.join(" ")} (without v1)`);
      const run = spawnSync("npm", command, { cwd: copy, stdio: "inherit", env: process.env });
      if (run.status !== 0) failed.push(name);
    }
    const ran = browser
      ? "lint, typecheck, every test and the browser suite"
      : `lint, typecheck and every test (browser suite not run: no Chromium at ${CHROMIUM}; set CHROMIUM_PATH, or apt-get install -y chromium)`;
    if (!browser) {
      console.warn(`\n━━━ browser suite NOT RUN (without v1): no Chromium at ${CHROMIUM}`);
      // In CI a suite that did not run is a failure, not a pass with a footnote.
      if (process.env.CI === "true") failed.push("browser suite (not run)");
    }
    console.log("\nDeleted and edited:");
    for (const line of done) console.log(`  ${line}`);
    if (failed.length > 0) {
      console.error(`\nrehearse-foxtrot-3: without v1, ${failed.join(", ")} failed; ran ${ran}.`);
      process.exitCode = 1;
      return;
    }
    console.log(`\nrehearse-foxtrot-3: without v1, ${ran} pass.`);
  } finally {
    if (keep) console.log(`(the copy is kept in ${copy})`);
    else rmSync(copy, { recursive: true, force: true });
  }
}

/** Git's view of the tree: tracked files that still exist, plus untracked files not ignored. */
function copyWorkingTree(copy: string) {
  const listed = execFileSync(
    "git",
    ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
    { cwd: root, encoding: "utf8", maxBuffer: 64 * 1024 * 1024 },
  )
    .split("\0")
    // node_modules comes next, as links; a symlinked one is not ignored by a `node_modules/` rule.
    .filter((file) => file !== "" && !file.split("/").includes("node_modules"));
  for (const file of new Set(listed)) {
    const from = path.join(root, file);
    if (!existsSync(from) && !isSymlink(from)) continue; // deleted in the working tree
    const to = path.join(copy, file);
    mkdirSync(path.dirname(to), { recursive: true });
    if (isSymlink(from)) symlinkSync(readlinkSync(from), to);
    else copyFileSync(from, to); // keeps the mode, so scripts stay executable
  }
}

/**
 * Every node_modules folder as hard links: a second of work instead of an `npm ci`. The workspace
 * links inside (node_modules/jafflr → ../jafflr) are relative, so in the copy they point at the
 * copy's workspaces. Nothing in the rehearsal writes into node_modules in place.
 */
function linkNodeModules(copy: string) {
  const workspaces: string[] = JSON.parse(
    readFileSync(path.join(root, "package.json"), "utf8"),
  ).workspaces;
  for (const dir of [".", ...workspaces]) {
    const from = path.join(root, dir, "node_modules");
    if (existsSync(from)) linkTree(from, path.join(copy, dir, "node_modules"));
  }
}

function linkTree(from: string, to: string) {
  mkdirSync(to, { recursive: true });
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    const source = path.join(from, entry.name);
    const target = path.join(to, entry.name);
    if (entry.isSymbolicLink()) symlinkSync(readlinkSync(source), target);
    else if (entry.isDirectory()) linkTree(source, target);
    else linkSync(source, target);
  }
}

/** The copy is a repository of its own: tools that read git (versions, biome's ignore file) work as in a clone. */
function commit(copy: string, message: string) {
  const git = (...gitArgs: string[]) =>
    execFileSync(
      "git",
      ["-c", "user.name=foxtrot rehearsal", "-c", "user.email=rehearsal@localhost", ...gitArgs],
      { cwd: copy, stdio: "pipe" },
    );
  if (!existsSync(path.join(copy, ".git"))) git("init", "-q");
  git("add", "-A");
  git("commit", "-q", "--allow-empty", "--no-verify", "-m", message);
}

/** Step 3, applied to `copy`; returns one line per deletion or edit. */
function applyStep3(copy: string): string[] {
  const done: string[] = [];
  guideNames(copy, [
    "`*pick-v1*`",
    FLAG_FILE,
    CHILLYBIN_WIRING.file,
    CHILLYBIN_WIRING.line,
    JAFFLR_DECISION.file,
    JAFFLR_DECISION.becomes,
    JAFFLR_FLAGS.file,
    JAFFLR_FLAGS.line,
    JAFFLR_FLAGS.becomes,
  ]);

  const v1Files = V1_FOLDERS.flatMap((folder) => filesIn(copy, folder)).filter((file) =>
    path.basename(file).includes("pick-v1"),
  );
  for (const expected of EXPECTED_V1_FILES) {
    if (!v1Files.includes(expected)) throw new Drift(`expected ${expected}, which does not exist`);
  }
  for (const file of v1Files) {
    rmSync(path.join(copy, file));
    done.push(`deleted ${file}`);
  }

  const flags = JSON.parse(readFileSync(path.join(copy, FLAG_FILE), "utf8"));
  const kept = (flags.features ?? []).filter((f: { name: string }) => f.name !== FLAG);
  if (kept.length !== (flags.features ?? []).length - 1) {
    throw new Drift(`expected exactly one "${FLAG}" entry in ${FLAG_FILE}`);
  }
  writeFileSync(
    path.join(copy, FLAG_FILE),
    `${JSON.stringify({ ...flags, features: kept }, null, 2)}\n`,
  );
  done.push(`edited ${FLAG_FILE}: deleted the "${FLAG}" entry`);

  done.push(...deleteV1Import(copy, CHILLYBIN_WIRING.file));
  editLine(copy, CHILLYBIN_WIRING.file, CHILLYBIN_WIRING.line, undefined);
  done.push(`edited ${CHILLYBIN_WIRING.file}: deleted the line with \`${CHILLYBIN_WIRING.line}\``);

  done.push(...deleteV1Import(copy, JAFFLR_DECISION.file));
  editLine(copy, JAFFLR_DECISION.file, JAFFLR_DECISION.line, JAFFLR_DECISION.becomes);
  done.push(
    `edited ${JAFFLR_DECISION.file}: the line with ${JAFFLR_DECISION.line} is now \`${JAFFLR_DECISION.becomes}\``,
  );

  editLine(copy, JAFFLR_FLAGS.file, JAFFLR_FLAGS.line, JAFFLR_FLAGS.becomes);
  done.push(
    `edited ${JAFFLR_FLAGS.file}: \`${JAFFLR_FLAGS.line}\` is now \`${JAFFLR_FLAGS.becomes}\``,
  );

  // "Nothing else may import a pick-v1 file": whatever still does will fail typecheck; say which.
  const stragglers = V1_FOLDERS.flatMap((folder) => filesIn(copy, folder)).filter(
    (file) =>
      /\.[cm]?[jt]s$/.test(file) &&
      /from\s+"[^"]*pick-v1[^"]*"/.test(readFileSync(path.join(copy, file), "utf8")),
  );
  for (const file of stragglers) console.warn(`warning: ${file} still imports a pick-v1 file`);
  return done;
}

/** The guide's step 3 must name what this rehearsal does, or a reader would follow another list. */
function guideNames(copy: string, names: string[]) {
  const guide = readFileSync(path.join(copy, GUIDE), "utf8");
  const step3 = guide.slice(guide.indexOf("## Step 3"));
  const missing = names.filter((name) => !step3.includes(name));
  if (missing.length > 0) {
    throw new Drift(
      `${GUIDE}'s step 3 does not name ${missing.join(", ")}: update the guide or this rehearsal`,
    );
  }
}

function deleteV1Import(copy: string, file: string): string[] {
  const text = readFileSync(path.join(copy, file), "utf8");
  const imports = text.match(V1_IMPORT) ?? [];
  if (imports.length !== 1) {
    throw new Drift(`expected one import from "./pick-v1" in ${file}, found ${imports.length}`);
  }
  writeFileSync(path.join(copy, file), text.replace(V1_IMPORT, ""));
  return [`edited ${file}: deleted the import from "./pick-v1"`];
}

/**
 * Replaces (or with `becomes` undefined, deletes) the one line of code containing `needle`,
 * keeping its indentation.
 */
function editLine(copy: string, file: string, needle: string, becomes: string | undefined) {
  const lines = readFileSync(path.join(copy, file), "utf8").split("\n");
  // Code only: a comment may well mention the flag, but it decides nothing.
  const isComment = (line: string) => /^\s*(\/\/|\/?\*)/.test(line);
  const at = lines.flatMap((line, i) => (line.includes(needle) && !isComment(line) ? [i] : []));
  if (at.length !== 1) {
    throw new Drift(
      `expected one line of code containing ${needle} in ${file}, found ${at.length}`,
    );
  }
  const i = at[0] as number;
  const line = lines[i] as string;
  if (!/[;{}]\s*$/.test(line)) {
    throw new Drift(`${file}:${i + 1} is not a whole statement on one line: ${line.trim()}`);
  }
  if (becomes === undefined) {
    lines.splice(i, 1);
    // A line between two blank ones leaves two in a row, which the formatter (lint) refuses.
    if (lines[i - 1]?.trim() === "" && lines[i]?.trim() === "") lines.splice(i, 1);
  } else {
    lines[i] = `${/^\s*/.exec(line)?.[0] ?? ""}${becomes}`;
  }
  writeFileSync(path.join(copy, file), lines.join("\n"));
}

/** Files under `folder` of the copy, relative to it (the copy holds only what git would ship). */
function filesIn(copy: string, folder: string): string[] {
  const base = path.join(copy, folder);
  if (!existsSync(base)) return [];
  return readdirSync(base, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile() && !entry.parentPath.split(path.sep).includes("node_modules"))
    .map((entry) => path.relative(copy, path.join(entry.parentPath, entry.name)));
}

function isSymlink(file: string): boolean {
  try {
    return lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}
