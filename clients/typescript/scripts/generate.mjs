// Generates src/gen from proto/ with this package's entries of the repository's one buf.gen.yaml
// (those whose `out` is under clients/typescript/): `buf generate` with the whole file would also
// run every other client's plugins, which a TypeScript build must not need.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const here = dirname(fileURLToPath(import.meta.url));
const pkg = resolve(here, "..");
const root = resolve(pkg, "../..");
const prefix = "clients/typescript/";

const template = parse(readFileSync(join(root, "buf.gen.yaml"), "utf8"));
const plugins = (template.plugins ?? []).filter((p) => String(p.out ?? "").startsWith(prefix));
if (plugins.length === 0) {
  throw new Error(`buf.gen.yaml has no plugin whose out is under ${prefix}`);
}
// Only what the template generates goes, so a file removed from proto/ leaves nothing behind.
for (const p of plugins) rmSync(join(root, p.out), { recursive: true, force: true });
execFileSync(join(pkg, "node_modules/.bin/buf"), ["generate", "--template", JSON.stringify({ ...template, plugins })], {
  cwd: root,
  stdio: "inherit",
});
