/**
 * `npm run rehearse:foxtrot-3 [-- --apply-only] [-- --keep]`: proves that step 3 of the foxtrot
 * (delete v1) still works. In a throwaway git copy of the working tree, it applies step 3 exactly
 * as docs/foxtrot.md lists it (anything missing or ambiguous stops it: guide and code cannot
 * drift), then runs lint, typecheck and tests of the workspaces step 3 changes and those depending
 * on them (the others are byte for byte what `npm test` ran), bench's typecheck and the browser
 * suite. Without Chromium it says so in its last line; with CI=true that fails.
 */
import { execFileSync, spawnSync } from "node:child_process";
import fs from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { CHROMIUM, hasChromium } from "testkit/chromium";

/** Folders whose `*pick-v1*` files step 3 deletes, and the two that must be among them. */
const V1_FOLDERS = ["chillybin", "jafflr", "integration-tests", "bench", "scripts/delivery"];
const EXPECTED_V1_FILES = ["chillybin/src/pick-v1.ts", "jafflr/src/pick-v1.ts"];
const FLAG_FILE = "jafflr/flags/features.json";
/** The lines step 3 edits: [file, a needle naming the one line of code, what it becomes or undefined to delete]. */
const EDITS: [string, string, string | undefined][] = [
  ["chillybin/src/app.ts", "mountPickV1(", undefined],
  ["jafflr/src/toastie.ts", '"pick.v2"', "const pick = pickV2;"],
  [
    "jafflr/src/flags.ts",
    'export const FLAGS = ["pick.v2"] as const;',
    "export const FLAGS = [] as const;",
  ],
];
const V1_IMPORT = /^import\b[^;]*?\bfrom\s+"\.\/pick-v1(\.js)?";[^\S\n]*\n/gm;

class Drift extends Error {}
const git = (cwd: string, args: string | string[]) =>
  execFileSync("git", typeof args === "string" ? args.split(" ") : args, { cwd, encoding: "utf8" });
const root = git(__dirname, "rev-parse --show-toplevel").trim();
const args = process.argv.slice(2);

function main(copy: string): number {
  console.log(`Copying the working tree to ${copy}`);
  const listed = git(root, "ls-files -z --cached --others --exclude-standard");
  for (const file of new Set(listed.split("\0"))) {
    const from = path.join(root, file);
    if (!file || file.split("/").includes("node_modules") || !fs.existsSync(from)) continue;
    fs.mkdirSync(path.dirname(path.join(copy, file)), { recursive: true });
    fs.copyFileSync(from, path.join(copy, file)); // keeps the mode: scripts stay executable
  }
  linkNodeModules(copy);
  commit(copy, "as it is now");
  const done = applyStep3(copy);
  console.log("\nStep 3 of the foxtrot, as docs/foxtrot.md lists it:");
  for (const line of done) console.log(`  ${line}`);
  commit(copy, "foxtrot step 3: delete v1");
  // Nothing else may import a pick-v1 file: typecheck will fail on it; say which.
  const grep = ["grep", "-lE", 'from\\s+"[^"]*pick-v1', "--", ...V1_FOLDERS];
  const importers = spawnSync("git", grep, { cwd: copy, encoding: "utf8" }).stdout;
  for (const file of importers.split("\n").filter((f) => /\.[cm]?[jt]s$/.test(f)))
    console.warn(`warning: ${file} still imports a pick-v1 file`);
  if (args.includes("--apply-only")) return 0;

  const browser = hasChromium();
  // First the formatter and linter: the guide's edits, made literally, must leave the tree clean.
  const runs = {
    "biome check (of step 3 as listed)": "biome check .",
    "lint, typecheck, test": "turbo run lint typecheck test --filter=...[HEAD^1] --continue",
    typecheck: "tsc -p bench/tsconfig.json --noEmit",
    "browser suite": browser ? "npm run test:browser -w integration-tests" : "",
  };
  const failed: string[] = [];
  for (const [name, command] of Object.entries(runs).filter(([, command]) => command)) {
    console.log(`\n━━━ ${command} (without v1)`);
    const [bin = "", ...rest] = command.split(" ");
    const local = bin === "npm" ? bin : path.join(copy, "node_modules", ".bin", bin);
    if (spawnSync(local, rest, { cwd: copy, stdio: "inherit" }).status !== 0) failed.push(name);
  }
  const ran = `lint, typecheck, the tests of what step 3 changes${browser ? " and the browser suite" : ` (browser suite not run: no Chromium at ${CHROMIUM}; set CHROMIUM_PATH, or apt-get install -y chromium)`}`;
  if (!browser && process.env.CI === "true") failed.push("browser suite (not run)");
  console.log(`\nDeleted and edited:\n  ${done.join("\n  ")}`);
  if (failed.length === 0) console.log(`\nrehearse-foxtrot-3: without v1, ${ran} pass.`);
  else console.error(`\nrehearse-foxtrot-3: without v1, ${failed.join(", ")} failed; ran ${ran}.`);
  return failed.length === 0 ? 0 : 1;
}

/**
 * node_modules as hard links to the checkout's files: no `npm ci`, and paths inside the copy (type
 * checking judges a symlink by where it leads). The workspace links among them are relative
 * (node_modules/jafflr → ../jafflr), so copied as links they point into the copy.
 */
function linkNodeModules(copy: string) {
  const workspaces: string[] = JSON.parse(
    fs.readFileSync(path.join(root, "package.json"), "utf8"),
  ).workspaces;
  const link = (from: string, to: string) => {
    fs.mkdirSync(to, { recursive: true });
    for (const entry of fs.readdirSync(from, { withFileTypes: true })) {
      const [source, target] = [path.join(from, entry.name), path.join(to, entry.name)];
      if (entry.isSymbolicLink()) fs.symlinkSync(fs.readlinkSync(source), target);
      else if (entry.isDirectory()) link(source, target);
      else fs.linkSync(source, target);
    }
  };
  for (const dir of [".", ...workspaces]) {
    const from = path.join(root, dir, "node_modules");
    if (fs.existsSync(from)) link(from, path.join(copy, dir, "node_modules"));
  }
}

/** The copy is a repository of its own: turbo's filter and biome's ignore file read git. */
function commit(copy: string, message: string) {
  if (!fs.existsSync(path.join(copy, ".git"))) git(copy, "init -q");
  git(copy, "add -A");
  const who = "-c user.name=rehearsal -c user.email=rehearsal@localhost".split(" ");
  git(copy, [...who, "commit", "-q", "--allow-empty", "--no-verify", "-m", message]);
}

function applyStep3(copy: string): string[] {
  const read = (file: string) => fs.readFileSync(path.join(copy, file), "utf8");
  const write = (file: string, text: string) => fs.writeFileSync(path.join(copy, file), text);
  const step3 = read("docs/foxtrot.md").split("## Step 3")[1] ?? "";
  const named = [
    "`*pick-v1*`",
    FLAG_FILE,
    ...EDITS.flatMap(([file, needle, becomes]) => [file, needle, becomes ?? ""]),
  ];
  const missing = named.filter((name) => !step3.includes(name));
  if (missing.length > 0)
    throw new Drift(
      `docs/foxtrot.md's step 3 does not name ${missing.join(", ")}: update the guide or this rehearsal`,
    );

  // The guide's command: git ls-files <folders> | grep 'pick-v1'.
  const listed = git(copy, `ls-files ${V1_FOLDERS.join(" ")}`).split("\n");
  const v1Files = listed.filter((file) => file.includes("pick-v1"));
  for (const expected of EXPECTED_V1_FILES)
    if (!v1Files.includes(expected)) throw new Drift(`expected ${expected}, which does not exist`);
  for (const file of v1Files) fs.rmSync(path.join(copy, file));
  const done = v1Files.map((file) => `deleted ${file}`);

  const flags = JSON.parse(read(FLAG_FILE));
  const kept = flags.features.filter((f: { name: string }) => f.name !== "pick.v2");
  if (kept.length !== flags.features.length - 1)
    throw new Drift(`expected one "pick.v2" entry in ${FLAG_FILE}`);
  write(FLAG_FILE, `${JSON.stringify({ ...flags, features: kept }, null, 2)}\n`);
  done.push(`edited ${FLAG_FILE}: deleted the "pick.v2" entry`);

  for (const [file, needle, becomes] of EDITS) {
    let text = read(file);
    if (!file.endsWith("flags.ts")) {
      const imports = text.match(V1_IMPORT) ?? [];
      if (imports.length !== 1)
        throw new Drift(`expected one import from "./pick-v1" in ${file}, found ${imports.length}`);
      text = text.replace(V1_IMPORT, "");
      done.push(`edited ${file}: deleted the import from "./pick-v1"`);
    }
    // The one line of code (a comment may mention the flag, but decides nothing) with the needle.
    const lines = text.split("\n");
    const at = lines.flatMap((line, i) =>
      line.includes(needle) && !/^\s*(\/\/|\/?\*)/.test(line) ? [i] : [],
    );
    const i = at[0] ?? -1;
    const line = lines[i] ?? "";
    if (at.length !== 1)
      throw new Drift(
        `expected one line of code containing ${needle} in ${file}, found ${at.length}`,
      );
    if (!/[;{}]\s*$/.test(line))
      throw new Drift(`${file}:${i + 1} is not a whole statement on one line: ${line.trim()}`);
    if (becomes !== undefined) lines[i] = `${/^\s*/.exec(line)?.[0]}${becomes}`;
    else lines.splice(i, 1);
    write(file, lines.join("\n"));
    done.push(
      `edited ${file}: ${becomes === undefined ? "deleted the line with" : "the line with"} \`${needle}\`${becomes ? ` is now \`${becomes}\`` : ""}`,
    );
  }
  return done;
}

const copy = fs.mkdtempSync(path.join(tmpdir(), "foxtrot-3-"));
// mkdtemp makes it 700; the embedded PostgreSQL may run as another OS user below it.
fs.chmodSync(copy, 0o755);
try {
  process.exitCode = main(copy);
} catch (error) {
  console.error(
    `rehearse-foxtrot-3: ${error instanceof Drift ? "" : "failed: "}${(error as Error).message}`,
  );
  process.exitCode = 1;
} finally {
  if (args.includes("--keep")) console.log(`(the copy is kept in ${copy})`);
  else fs.rmSync(copy, { recursive: true, force: true });
}
