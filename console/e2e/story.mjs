// The seed's whole story in a real browser (Debian's Chromium, driven by playwright-core) against
// a real `webhooks serve` and PostgreSQL: sign in, Learn More, create a webhook (field errors
// first), see its secret once, edit it, save after another admin changed it ("changed by someone
// else, reload", then Reload), filter the list, watch a delivery appear live in History
// when an event is published, open its details, resend it with confirmation and watch the new
// attempt arrive, see the failing-endpoint count and History's banner (failing, then disabled),
// check tablet width, send a test event, rotate the secret, disable and enable
// it, delete it with confirmation, read who did all that in the webhook's Activity tab and on the
// Activity page, and see what the console says once the service is gone. Every step is checked in the DOM; any browser console error or
// uncaught page error fails the story. A screenshot of each screen goes to SCREENSHOT_DIR.
//
// Run by tests/console/main.rs (`cargo test --test console`), which starts the service and a
// receiver and publishes the event through EventIngest when this script prints READY_TO_PUBLISH,
// answering `PUBLISHED <request id>` on stdin, and stops the service when it prints
// READY_TO_STOP, answering `STOPPED`.
//
// Environment: CONSOLE_URL, ADMIN_TOKEN, INGEST_TOKEN, RECEIVER_URL, SCREENSHOT_DIR (default
// target/console-screenshots), CHROMIUM_PATH (default /usr/bin/chromium), STORY_TIMEZONE
// (default Asia/Singapore: dates must be shown in the browser's zone, not the server's).

import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { createInterface } from "node:readline";
import { chromium, expect } from "./playwright.mjs";

function env(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") {
    console.error(`story: environment variable ${name} is required`);
    process.exit(2);
  }
  return value;
}

const CONSOLE_URL = env("CONSOLE_URL").replace(/\/$/, "");
const ADMIN_TOKEN = env("ADMIN_TOKEN");
const INGEST_TOKEN = env("INGEST_TOKEN");
const RECEIVER_URL = env("RECEIVER_URL");
const SCREENSHOT_DIR = env("SCREENSHOT_DIR", "target/console-screenshots");
const CHROMIUM_PATH = env("CHROMIUM_PATH", "/usr/bin/chromium");
const TIMEZONE = env("STORY_TIMEZONE", "Asia/Singapore");
const LAPTOP = { width: 1366, height: 800 };
const TABLET = { width: 820, height: 1180 };

// --- The conversation with the test that runs this script (stdin lines) ---------------------
const stdinLines = [];
const stdinWaiters = [];
createInterface({ input: process.stdin }).on("line", (line) => {
  const waiter = stdinWaiters.shift();
  if (waiter) waiter(line);
  else stdinLines.push(line);
});
function nextStdinLine(timeoutMs) {
  if (stdinLines.length > 0) return Promise.resolve(stdinLines.shift());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer on stdin within ${timeoutMs} ms`)), timeoutMs);
    stdinWaiters.push((line) => {
      clearTimeout(timer);
      resolve(line);
    });
  });
}

// --- Steps, screenshots and browser errors -------------------------------------------------
rmSync(SCREENSHOT_DIR, { recursive: true, force: true });
mkdirSync(SCREENSHOT_DIR, { recursive: true });
const browserErrors = [];
let shots = 0;
let passed = 0;
let page;

async function shot(name, options = {}) {
  shots += 1;
  const file = path.join(SCREENSHOT_DIR, `${String(shots).padStart(2, "0")}-${name}.png`);
  await (options.page ?? page).screenshot({ path: file, fullPage: options.fullPage ?? false });
  console.log(`  screenshot ${file}`);
}

async function step(name, fn) {
  try {
    await fn();
    if (browserErrors.length > 0) throw new Error(`browser console errors:\n  ${browserErrors.join("\n  ")}`);
    passed += 1;
    console.log(`ok ${passed} - ${name}`);
  } catch (err) {
    console.log(`not ok ${passed + 1} - ${name}`);
    console.log(String(err?.stack ?? err));
    try {
      await page.screenshot({ path: path.join(SCREENSHOT_DIR, `failure-${name.replace(/\W+/g, "-")}.png`), fullPage: true });
      console.log(`  page at failure: ${page.url()}`);
      console.log(`  page text at failure:\n${(await page.locator("body").innerText()).slice(0, 3000)}`);
    } catch {
      // The page itself may be gone.
    }
    console.log(`${passed} passed, 1 failed`);
    process.exit(1);
  }
}

// Set once the test has stopped the service: the browser then logs its own network failures
// (the cut stream, refused connections), which are not the console's errors.
let serviceStopped = false;

function watchErrors(p) {
  p.on("console", (msg) => {
    if (msg.type() !== "error") return;
    if (serviceStopped && /^Failed to load resource: net::ERR_/.test(msg.text())) return;
    browserErrors.push(`console.error on ${p.url()}: ${msg.text()}`);
  });
  p.on("pageerror", (err) => browserErrors.push(`uncaught error on ${p.url()}: ${err.message}`));
}

// --- The story ------------------------------------------------------------------------------
const browser = await chromium.launch({
  executablePath: CHROMIUM_PATH,
  headless: true,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const context = await browser.newContext({ viewport: LAPTOP, timezoneId: TIMEZONE, locale: "en-GB" });
await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: CONSOLE_URL });
context.setDefaultTimeout(15_000);
context.on("page", watchErrors);
page = await context.newPage();

const main = () => page.getByRole("main");
const NAME = "Payments desk: withdrawals";
const EDITED = "Payments desk: withdrawals (all nodes)";
// The description tests/console/main.rs gives the webhook behind the console's back.
const CHANGED_BEHIND = "Changed by another admin";
let firstSecret = "";
let requestId = "";

await step("the console asks for a token, refuses a wrong one and explains PERMISSION_DENIED", async () => {
  await page.goto(CONSOLE_URL);
  await expect(page.getByRole("heading", { name: "Sign in", level: 1 })).toBeVisible();
  await expect(main().getByRole("alert")).toContainText("asks for an access token");
  await shot("sign-in");
  await page.getByLabel("Access token").fill("not-a-token");
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(main().getByRole("alert")).toContainText("did not accept the access token (UNAUTHENTICATED)");
  // An ingest token is a real token whose role may not use the admin API.
  await page.getByLabel("Access token").fill(INGEST_TOKEN);
  await page.getByRole("button", { name: "Sign in" }).click();
  await expect(page.getByRole("heading", { name: "Webhooks", level: 1 })).toBeVisible();
  await expect(main().getByRole("alert")).toContainText("PERMISSION_DENIED");
  await shot("permission-denied");
  // The admin token, kept in sessionStorage.
  await page.getByRole("button", { name: "Change token" }).click();
  await page.getByLabel("Access token").fill(ADMIN_TOKEN);
  await page.keyboard.press("Enter");
  await expect(main().getByText("No webhooks yet")).toBeVisible();
  const stored = await page.evaluate(() => Object.values(sessionStorage));
  if (!stored.includes(ADMIN_TOKEN)) throw new Error("the token is not kept in sessionStorage");
});

await step("Learn More opens the receiving-webhooks documentation in a new tab", async () => {
  const [docs] = await Promise.all([
    context.waitForEvent("page"),
    main().getByRole("link", { name: /Learn More/ }).click(),
  ]);
  await docs.waitForLoadState();
  await expect(docs.getByRole("heading", { name: "Receiving webhooks", level: 1 })).toBeVisible();
  await expect(docs.getByRole("heading", { name: "Verifying the signature" })).toBeAttached();
  await expect(docs.getByText("webhook-signature").first()).toBeVisible();
  await shot("learn-more", { page: docs });
  await docs.close();
});

await step("the keyboard reaches Create Webhook", async () => {
  await page.locator("body").focus();
  let reached = false;
  for (let i = 0; i < 30 && !reached; i += 1) {
    await page.keyboard.press("Tab");
    reached = await page.evaluate(() => document.activeElement?.textContent?.trim() === "Create Webhook");
  }
  if (!reached) throw new Error("Tab never reached the Create Webhook link");
  await page.keyboard.press("Enter");
  await expect(page.getByRole("heading", { name: "Create Webhook", level: 1 })).toBeVisible();
});

await step("Save with an empty form shows the API's field error next to the field", async () => {
  await page.getByRole("button", { name: "Save" }).click();
  const name = page.getByLabel("Name", { exact: true });
  await expect(name).toHaveAttribute("aria-invalid", "true");
  await expect(name).toBeFocused();
  await expect(main().getByRole("alert")).toContainText("webhook.name");
  await shot("create-field-error");
});

await step("create a webhook: name, URL, function, approval nodes 1 and 2 (node 4 added), reject, generated secret", async () => {
  await page.getByLabel("Name", { exact: true }).fill(NAME);
  // Editing the field clears the service's error.
  await expect(page.getByLabel("Name", { exact: true })).toHaveAttribute("aria-invalid", null);
  await expect(main().getByRole("alert")).toHaveCount(0);
  await page.getByLabel("Destination URL").fill(RECEIVER_URL);
  await page.getByLabel("Select Function").selectOption({ label: "Withdrawal" });
  await page.getByLabel("Approve withdrawal – Node 1").check();
  await page.getByRole("button", { name: "Add node 4" }).click();
  await expect(page.getByLabel("Approve withdrawal – Node 4")).toBeFocused();
  await page.getByLabel("Approve withdrawal – Node 2").check();
  await page.getByLabel("Reject withdrawal").check();
  await page.getByRole("button", { name: "Generate" }).click();
  firstSecret = await page.getByLabel("Secret Key (optional)").inputValue();
  if (!/^whsec_[A-Za-z0-9+/]{43}=$/.test(firstSecret)) throw new Error(`generated secret looks wrong: ${firstSecret}`);
  await page.getByLabel("Description (optional)").fill("Notifies the payments desk of withdrawal decisions");
  await shot("create-form", { fullPage: true });
  await page.getByRole("button", { name: "Save" }).click();
  await expect(page.getByRole("heading", { name: "Webhook created", level: 1 })).toBeVisible();
  await expect(page.getByTestId("secret-value")).toHaveValue(firstSecret);
  await page.getByRole("button", { name: "Copy" }).click();
  await expect(main().getByText("Copied to the clipboard.")).toBeVisible();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  if (copied !== firstSecret) throw new Error("the clipboard does not hold the secret");
  await shot("secret-shown-once");
  await page.getByRole("link", { name: "Done" }).click();
});

const row = () => main().getByRole("row").filter({ hasText: EDITED });

await step("the list shows name, destination, function, events, state and last delivery", async () => {
  const r = main().getByRole("row").filter({ hasText: NAME });
  await expect(r).toContainText(RECEIVER_URL);
  await expect(r).toContainText("Withdrawal");
  await expect(r).toContainText("Approve node 1, 2 · Reject");
  await expect(r.getByRole("switch", { name: `${NAME} enabled` })).toHaveAttribute("aria-checked", "true");
  await expect(r).toContainText("None yet");
  await shot("webhook-list");
});

await step("edit: rename and add node 3", async () => {
  await main().getByRole("link", { name: `Edit ${NAME}` }).click();
  await expect(page.getByRole("heading", { name: `Edit ${NAME}`, level: 1 })).toBeVisible();
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue(NAME);
  await expect(page.getByLabel("Approve withdrawal – Node 2")).toBeChecked();
  await page.getByLabel("Name", { exact: true }).fill(EDITED);
  await page.getByLabel("Approve withdrawal – Node 3").check();
  await shot("edit-form", { fullPage: true });
  await page.getByRole("button", { name: "Save" }).click();
  await expect(row()).toContainText("Approve node 1, 2, 3 · Reject");
});

await step("save after someone else changed the webhook: 'changed by someone else, reload', then Reload", async () => {
  await main().getByRole("link", { name: `Edit ${EDITED}` }).click();
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue(EDITED);
  await page.getByLabel("Description (optional)").fill("My description");
  // Another admin edits the webhook over gRPC while this form is open (the test does it).
  console.log("READY_TO_CHANGE");
  const answer = await nextStdinLine(30_000);
  if (answer !== "CHANGED") throw new Error(`expected CHANGED on stdin, got ${answer}`);
  await page.getByRole("button", { name: "Save" }).click();
  const banner = main().getByRole("alert");
  await expect(banner).toContainText("Changed by someone else, reload");
  // The banner is at the top of a long form: Save moves focus (and the view) to its Reload.
  await expect(banner.getByRole("button", { name: "Reload" })).toBeFocused();
  await shot("edit-conflict");
  await banner.getByRole("button", { name: "Reload" }).click();
  await expect(page.getByLabel("Description (optional)")).toHaveValue(CHANGED_BEHIND);
  await expect(main().getByRole("alert")).toHaveCount(0);
  // Saved again on the current version, it goes through.
  await page.getByRole("button", { name: "Save" }).click();
  await expect(row()).toContainText("Approve node 1, 2, 3 · Reject");
});

await step("filter the list by function and state", async () => {
  await page.getByLabel("Function").selectOption({ label: "Prop trading participation" });
  await expect(main().getByText("No webhook matches these filters.")).toBeVisible();
  await page.getByLabel("Function").selectOption({ label: "Withdrawal" });
  await expect(row()).toBeVisible();
  await page.getByLabel("State").selectOption({ label: "Disabled" });
  await expect(main().getByText("No webhook matches these filters.")).toBeVisible();
  await page.getByLabel("State").selectOption({ label: "Enabled" });
  await expect(row()).toBeVisible();
  await page.getByLabel("Function").selectOption({ label: "All functions" });
  await page.getByLabel("State").selectOption({ label: "Enabled and disabled" });
  await expect(row()).toBeVisible();
});

const deliveryRow = () => main().getByRole("row").filter({ hasText: requestId });

await step("History: a published event's delivery appears live, then its failed first attempt", async () => {
  await main().getByRole("link", { name: `History of ${EDITED}` }).click();
  await expect(page.getByRole("heading", { name: `History: ${EDITED}`, level: 1 })).toBeVisible();
  await expect(page.getByTestId("live-state")).toHaveText("Live");
  await expect(main().getByText("No deliveries yet.")).toBeVisible();
  await page.evaluate(() => {
    window.__storyNoReload = true;
  });
  console.log("READY_TO_PUBLISH");
  const answer = await nextStdinLine(30_000);
  const match = /^PUBLISHED (\S+)$/.exec(answer);
  if (!match) throw new Error(`unexpected answer on stdin: ${answer}`);
  requestId = match[1];
  await expect(deliveryRow()).toContainText("withdrawal.approved");
  // The receiver answers 500 to the first request; the retry is an hour away.
  await expect(deliveryRow()).toContainText("500 Internal Server Error");
  await expect(deliveryRow()).toContainText("Pending");
  await expect(deliveryRow().locator('td[data-label="Attempts"]')).toHaveText("1");
  if (!(await page.evaluate(() => window.__storyNoReload === true))) throw new Error("the page was reloaded");
  // Dates are in the browser's time zone.
  const time = deliveryRow().locator("time");
  const iso = await time.getAttribute("datetime");
  const expected = new Date(iso).toLocaleString("en-GB", { timeZone: TIMEZONE });
  await expect(time).toHaveText(expected);
  await shot("history-live");
});

await step("History filters", async () => {
  await page.getByLabel("Status").selectOption({ label: "Succeeded" });
  await expect(main().getByText("No delivery matches these filters.")).toBeVisible();
  await page.getByLabel("Status").selectOption({ label: "Pending" });
  await expect(deliveryRow()).toBeVisible();
  await page.getByLabel("Request id").fill("no-such-request");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await expect(main().getByText("No delivery matches these filters.")).toBeVisible();
  await page.getByRole("button", { name: "Clear" }).click();
  await expect(deliveryRow()).toBeVisible();
});

await step("Activity tab: the edit is recorded with who made it and the field-level diff", async () => {
  const tabs = () => main().getByRole("navigation", { name: "Webhook" });
  await tabs().getByRole("link", { name: "Activity" }).click();
  await expect(page.getByRole("heading", { name: `Activity: ${EDITED}`, level: 1 })).toBeVisible();
  await expect(tabs().getByRole("link", { name: "Activity" })).toHaveAttribute("aria-current", "page");
  // Step 8's change behind the console's back and its save after Reload are updates too: the
  // rename is the one row that names both names.
  const renamed = main()
    .getByRole("row")
    .filter({ hasText: "webhook.updated" })
    .filter({ hasText: `name: ${NAME} → ${EDITED}` });
  await expect(renamed).toHaveCount(1);
  await expect(renamed).toContainText("(admin)");
  await expect(main().getByRole("row").filter({ hasText: "webhook.created" })).toContainText(`name: ${NAME}`);
  await shot("webhook-activity");
  await tabs().getByRole("link", { name: "History" }).click();
  await expect(deliveryRow()).toBeVisible();
});

await step("a failing endpoint: the list counts it and History shows why, since when and the last error", async () => {
  await main().getByRole("link", { name: "Webhooks" }).click();
  await expect(page.getByTestId("failing-count")).toContainText("1 failing endpoint");
  await expect(row().getByTestId("failing")).toContainText("HTTP 500");
  await shot("list-failing");
  await main().getByRole("link", { name: `History of ${EDITED}` }).click();
  const banner = page.getByTestId("webhook-health");
  await expect(banner).toContainText("Failing since");
  await expect(banner).toContainText("1 failed attempt in a row.");
  await expect(banner).toContainText("Last error: HTTP 500");
  await shot("history-failing-banner");
});

await step("delivery details: the attempt's request (URL, signed headers, body) and response", async () => {
  await deliveryRow().getByRole("link", { name: /^Details of/ }).click();
  await expect(page.getByRole("heading", { name: "Delivery details", level: 1 })).toBeVisible();
  const attempt = main().locator('li[data-attempt="1"]');
  await expect(attempt).toContainText(RECEIVER_URL);
  const request = attempt.getByRole("region", { name: "Request of attempt 1" });
  await expect(request.getByRole("row", { name: /webhook-signature/ })).toContainText("v1,");
  await expect(request.getByRole("row", { name: /webhook-id/ })).toContainText("msg_");
  await expect(request.getByRole("row", { name: /webhook-timestamp/ })).toBeVisible();
  await expect(request).toContainText(requestId);
  const response = attempt.getByRole("region", { name: "Response of attempt 1" });
  await expect(response.getByTestId("response-status")).toContainText("500 Internal Server Error");
  await expect(response).toContainText("receiver is warming up");
  await expect(page.getByTestId("attempt-count")).toHaveText("1");
  await shot("delivery-details", { fullPage: true });
});

await step("Resend asks for confirmation (Escape cancels), then the new attempt appears live", async () => {
  await main().getByRole("button", { name: "Resend" }).click();
  const dialog = page.getByRole("dialog", { name: "Resend this delivery?" });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByRole("button", { name: "Cancel" })).toBeFocused();
  await shot("resend-confirmation");
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(main().getByRole("button", { name: "Resend" })).toBeFocused();
  await expect(page.getByTestId("attempt-count")).toHaveText("1");
  await main().getByRole("button", { name: "Resend" }).click();
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(dialog).toBeHidden();
  const second = main().locator('li[data-attempt="2"]');
  await expect(second).toContainText("Resend");
  await expect(second.getByTestId("response-status")).toContainText("200 OK");
  // The receiver's answer is a few KiB: shown collapsed, expanded on demand.
  const body = second.locator("details.body").filter({ hasText: "Response body" });
  await expect(body).toHaveAttribute("open", null);
  await expect(body.locator("summary")).toContainText("large, click to expand");
  await body.locator("summary").click();
  await expect(body).toHaveAttribute("open", "");
  await expect(body.locator("pre")).toContainText('"accepted": true');
  await expect(page.getByTestId("delivery-status")).toContainText("Succeeded");
  await expect(page.getByTestId("attempt-count")).toHaveText("2");
  if (!(await page.evaluate(() => window.__storyNoReload === true))) throw new Error("the page was reloaded");
  await shot("resent-new-attempt", { fullPage: true });
});

await step("tablet width: details, history and list fit without horizontal scrolling", async () => {
  const fits = async (what) => {
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    if (width > TABLET.width) throw new Error(`${what} is ${width}px wide at tablet width ${TABLET.width}px`);
  };
  await page.setViewportSize(TABLET);
  await fits("delivery details");
  await shot("tablet-delivery-details", { fullPage: true });
  await main().getByRole("link", { name: "History" }).click();
  await expect(deliveryRow()).toContainText("Succeeded");
  await fits("history");
  await shot("tablet-history");
  await main().getByRole("link", { name: "Webhooks" }).click();
  await expect(row()).toBeVisible();
  await fits("webhook list");
  await shot("tablet-webhook-list");
  await page.setViewportSize(LAPTOP);
});

await step("the list shows the last delivery outcome", async () => {
  await expect(row().locator('td[data-label="Last delivery"]')).toContainText("Succeeded");
  // The resend succeeded: the endpoint is no longer failing.
  await expect(page.getByTestId("failing-count")).toHaveCount(0);
  await expect(row().getByTestId("failing")).toHaveCount(0);
});

await step("Send test event: a webhook.test delivery succeeds", async () => {
  await row().getByRole("button", { name: `Send test event to ${EDITED}` }).click();
  await expect(page.getByRole("status").getByText(`Test event sent to ${EDITED}.`)).toBeVisible();
  await page.getByRole("link", { name: "View delivery" }).click();
  await expect(page.getByRole("heading", { name: "Delivery details", level: 1 })).toBeVisible();
  await expect(main().getByRole("definition").filter({ hasText: "webhook.test" })).toBeVisible();
  await expect(page.getByTestId("delivery-status")).toContainText("Succeeded");
  await main().getByRole("link", { name: "Webhooks" }).click();
});

await step("Rotate secret: confirmation, then the new secret shown once", async () => {
  await row().getByRole("button", { name: `Rotate secret of ${EDITED}` }).click();
  const confirm = page.getByRole("dialog", { name: "Rotate the signing secret?" });
  await expect(confirm.getByLabel("Grace period")).toHaveValue(String(86_400_000));
  await confirm.getByRole("button", { name: "Rotate secret" }).click();
  const reveal = page.getByRole("dialog", { name: "New signing secret" });
  await expect(reveal).toBeVisible();
  const secret = await reveal.getByTestId("secret-value").inputValue();
  if (!secret.startsWith("whsec_") || secret === firstSecret) throw new Error(`unexpected new secret ${secret}`);
  await shot("rotated-secret");
  await reveal.getByRole("button", { name: "Done" }).click();
  await expect(reveal).toBeHidden();
});

await step("Disable, then enable again with the same toggle", async () => {
  const toggle = row().getByRole("switch", { name: `${EDITED} enabled` });
  await toggle.click();
  await expect(toggle).toHaveAttribute("aria-checked", "false");
  await expect(toggle).toContainText("Disabled");
  await expect(row().getByRole("button", { name: `Send test event to ${EDITED}` })).toBeDisabled();
  await page.getByLabel("State").selectOption({ label: "Disabled" });
  await expect(row()).toBeVisible();
  await shot("disabled");
  await page.getByLabel("State").selectOption({ label: "Enabled" });
  await expect(main().getByText("No webhook matches these filters.")).toBeVisible();
  await page.getByLabel("State").selectOption({ label: "Enabled and disabled" });
  await row().getByRole("switch", { name: `${EDITED} enabled` }).click();
  await expect(row().getByRole("switch", { name: `${EDITED} enabled` })).toHaveAttribute("aria-checked", "true");
  await row().getByRole("switch", { name: `${EDITED} enabled` }).click();
  await expect(row().getByRole("switch", { name: `${EDITED} enabled` })).toHaveAttribute("aria-checked", "false");
  // A webhook an admin turned off is not a failing endpoint, but its History says so.
  await expect(page.getByTestId("failing-count")).toHaveCount(0);
  await main().getByRole("link", { name: `History of ${EDITED}` }).click();
  const banner = page.getByTestId("webhook-health");
  await expect(banner).toContainText("Disabled since");
  await expect(banner).toContainText("Reason: disabled by an admin");
  await shot("history-disabled-banner");
  await main().getByRole("link", { name: "Webhooks" }).click();
});

await step("Delete asks for confirmation (Escape cancels), Confirm deletes", async () => {
  await row().getByRole("button", { name: `Delete ${EDITED}` }).click();
  const dialog = page.getByRole("dialog", { name: "Delete webhook?" });
  await expect(dialog).toContainText(EDITED);
  await page.keyboard.press("Escape");
  await expect(dialog).toBeHidden();
  await expect(row()).toBeVisible();
  await row().getByRole("button", { name: `Delete ${EDITED}` }).click();
  await expect(dialog).toBeVisible();
  await shot("delete-confirmation");
  await dialog.getByRole("button", { name: "Confirm" }).click();
  await expect(dialog).toBeHidden();
  await expect(row()).toHaveCount(0);
  await expect(main().getByText("No webhooks yet")).toBeVisible();
  await page.reload();
  await expect(main().getByText("No webhooks yet")).toBeVisible();
  await shot("deleted");
});

await step("Activity page: the deletion, the toggles and the rotation, newest first, without the secret", async () => {
  const nav = page.getByRole("navigation", { name: "Main" });
  await nav.getByRole("link", { name: "Activity" }).click();
  await expect(page.getByRole("heading", { name: "Activity", level: 1 })).toBeVisible();
  const newest = main().getByRole("row").nth(1);
  await expect(newest).toContainText("webhook.deleted");
  await expect(newest).toContainText(`name: was ${EDITED}`);
  const rotated = main().getByRole("row").filter({ hasText: "webhook.secret_rotated" });
  await expect(rotated).toContainText("secret: (value changed)");
  await expect(main().getByRole("row").filter({ hasText: "webhook.disabled" })).toHaveCount(2);
  await expect(main().getByText(firstSecret)).toHaveCount(0);
  await shot("activity");
  await nav.getByRole("link", { name: "Webhooks" }).click();
  await expect(main().getByText("No webhooks yet")).toBeVisible();
});

await step("UNAVAILABLE: a clear message when the service cannot be reached", async () => {
  // From now on the browser's own logs of the cut stream and refused connections are expected
  // (set before asking: the browser may log them before STOPPED is read).
  serviceStopped = true;
  console.log("READY_TO_STOP");
  const answer = await nextStdinLine(60_000);
  if (answer !== "STOPPED") throw new Error(`unexpected answer on stdin: ${answer}`);
  await page.getByLabel("State").selectOption({ label: "Enabled" });
  await expect(main().getByRole("alert")).toContainText("The service is unavailable (UNAVAILABLE)");
  await expect(main().getByText("No webhook")).toHaveCount(0);
  await expect(main().locator(".live")).toHaveText("Reconnecting…");
  await shot("unavailable");
});

await browser.close();
console.log(`${passed} passed, 0 failed (${shots} screenshots in ${SCREENSHOT_DIR})`);
process.exit(0);
