// The TypeScript section of docs/clients.md, executed as a reader would: its build and install
// lines (`sh typescript-build` in a copy of the repository, `sh typescript-install` in a new
// service, so the package is built from scratch and installed from its tarball, as a service
// gets it), then every `js typescript-example` block, in page order, as one module of that
// service, against the real service. Run by tests/clients/typescript.rs, which passes the
// service's address and credentials (see service.test.mjs) in the environment.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
const PAGE = "docs/clients.md";

/** The fenced code blocks of the page's `## TypeScript` section: info string and text. */
function typescriptBlocks() {
  const page = readFileSync(join(root, PAGE), "utf8");
  const start = page.indexOf("\n## TypeScript\n");
  assert.notEqual(start, -1, `${PAGE} has no "## TypeScript" section`);
  const end = page.indexOf("\n## ", start + 1);
  const section = page.slice(start, end === -1 ? undefined : end);
  return [...section.matchAll(/^```([^\n]*)\n([\s\S]*?)^```$/gm)].map(([, info, text]) => ({
    info: info.trim(),
    text,
  }));
}

/** Runs a `sh` block with bash, failing on its first failing command. */
function sh(text, cwd) {
  execFileSync("bash", ["-euo", "pipefail", "-c", text], {
    cwd,
    stdio: ["ignore", "inherit", "inherit"],
    // The registry's packages, from npm's cache when it has them (the package's own build
    // installed the same ones).
    env: { ...process.env, npm_config_prefer_offline: "true", npm_config_audit: "false", npm_config_fund: "false" },
  });
}

test("the TypeScript snippets of docs/clients.md install the package and run against the service", () => {
  const blocks = typescriptBlocks();
  const kinds = ["sh typescript-build", "sh typescript-install", "js typescript-example"];
  const unknown = blocks.filter((b) => !kinds.includes(b.info));
  assert.deepEqual(unknown.map((b) => b.info), [], "blocks of a kind this test does not run");
  const js = blocks.filter((b) => b.info === "js typescript-example");
  assert.ok(js.length >= 5, `connect, publish, field error and watch examples; found ${js.length} js blocks`);

  const scratch = mkdtempSync(join(tmpdir(), "webhooks-docs-typescript-"));
  try {
    // The repository as a checkout has it: what the package's build reads, nothing built.
    const repository = join(scratch, "webhooks");
    for (const path of ["buf.gen.yaml", "proto", "clients/service-config.json", "clients/typescript"]) {
      cpSync(join(root, path), join(repository, path), {
        recursive: true,
        filter: (source) => !/^clients\/typescript\/(node_modules|dist|src\/gen)(\/|$)/.test(relative(root, source)),
      });
    }
    const service = join(scratch, "service");
    mkdirSync(service);
    writeFileSync(join(service, "package.json"), `${JSON.stringify({ private: true, type: "module" })}\n`);

    for (const block of blocks.filter((b) => b.info.startsWith("sh "))) {
      if (block.info === "sh typescript-build") sh(block.text, repository);
      else sh(block.text.replaceAll("path/to/webhooks", repository), service);
    }

    writeFileSync(join(service, "example.mjs"), js.map((b) => b.text).join("\n"));
    const output = execFileSync("node", ["example.mjs"], {
      cwd: service,
      encoding: "utf8",
      timeout: 120_000,
      env: { ...process.env, CRM_WEBHOOK_URL: `${process.env.WEBHOOKS_RECEIVER_URL}/crm/withdrawals` },
    });
    const lines = output.split("\n");
    const expect = (line) => assert.ok(lines.includes(line), `the page's example printed no ${JSON.stringify(line)}:\n${output}`);
    expect("published withdrawal.approved 1");
    assert.ok(
      lines.some((l) => l.startsWith("refused: webhook.destination_url: ")),
      `the field error names webhook.destination_url:\n${output}`,
    );
    expect("live: ATTEMPT_SUCCEEDED withdrawal.rejected");
    expect("resumed: CREATED WD-1002");
    expect("resumed: ATTEMPT_SUCCEEDED WD-1002");
    assert.ok(
      !lines.some((l) => l.startsWith("resumed:") && !l.endsWith(" WD-1002")),
      `the resumed watch starts after the cursor:\n${output}`,
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
});
