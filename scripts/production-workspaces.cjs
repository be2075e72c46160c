#!/usr/bin/env node
// Part of the image recipe (the Dockerfile runs it; so does `npm run docker:check`): plain
// CommonJS so the bare node of the build and runtime stages runs it without tooling.
//
// `turbo prune <service>` keeps every workspace the service depends on, devDependencies included
// (jafflr's tests start a real chillybin, so chillybin is a devDependency of jafflr). npm installs
// every workspace's production dependencies, so `npm ci --omit=dev` alone would ship chillybin and
// pg inside jafflr's image. This narrows a pruned tree to the service's *production* closure.
//
//   node production-workspaces.cjs list <service>    print the closure's folders, one per line
//   node production-workspaces.cjs strip <service>   rewrite the manifests in the current folder:
//       root `workspaces` = the closure, no devDependencies anywhere; delete the other
//       workspaces' folders. Then `npm prune --omit=dev --offline` removes what is left over.
"use strict";
const fs = require("node:fs");
const path = require("node:path");

const PRODUCTION_FIELDS = ["dependencies", "optionalDependencies", "peerDependencies"];

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

function writeJson(file, json) {
  fs.writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
}

/** Folders (relative to `root`) of `service` and the workspaces it needs at run time. */
function productionClosure(root, service) {
  const manifest = readJson(path.join(root, "package.json"));
  const folders = new Map();
  for (const dir of manifest.workspaces || []) {
    const file = path.join(root, dir, "package.json");
    if (fs.existsSync(file)) folders.set(readJson(file).name, dir);
  }
  if (!folders.has(service)) {
    throw new Error(`no workspace named ${service} in ${path.join(root, "package.json")}`);
  }
  const keep = new Map();
  const visit = (name) => {
    const dir = folders.get(name);
    if (dir === undefined || keep.has(name)) return;
    keep.set(name, dir);
    const pkg = readJson(path.join(root, dir, "package.json"));
    for (const field of PRODUCTION_FIELDS)
      for (const dep of Object.keys(pkg[field] || {})) visit(dep);
  };
  visit(service);
  return { manifest, folders, keep: [...keep.values()] };
}

function strip(root, service) {
  const { manifest, folders, keep } = productionClosure(root, service);
  manifest.workspaces = manifest.workspaces.filter((dir) => keep.includes(dir));
  delete manifest.devDependencies;
  writeJson(path.join(root, "package.json"), manifest);
  for (const dir of keep) {
    const file = path.join(root, dir, "package.json");
    const pkg = readJson(file);
    delete pkg.devDependencies;
    writeJson(file, pkg);
  }
  for (const [name, dir] of folders) {
    if (keep.includes(dir)) continue;
    fs.rmSync(path.join(root, dir), { recursive: true, force: true });
    fs.rmSync(path.join(root, "node_modules", name), { recursive: true, force: true }); // its link
  }
  return keep;
}

function main(argv) {
  const [command, service] = argv;
  if (!service || (command !== "list" && command !== "strip")) {
    process.stderr.write("usage: production-workspaces.cjs list|strip <service>\n");
    return 2;
  }
  const root = process.cwd();
  const folders = command === "list" ? productionClosure(root, service).keep : strip(root, service);
  process.stdout.write(`${folders.join("\n")}\n`);
  return 0;
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`production-workspaces: ${error.message}\n`);
    process.exitCode = 1;
  }
}

module.exports = { productionClosure, strip };
