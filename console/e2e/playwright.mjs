// playwright-core (the browser driver, without Playwright's test runner or browser downloads)
// and a small `expect` with Playwright-style retrying assertions: each one polls the page until
// it holds or a deadline passes, then fails with what it last saw.

import { chromium } from "playwright-core";

export { chromium };

const DEFAULT_TIMEOUT_MS = 15_000;
const POLL_MS = 100;
const QUICK = { timeout: 250 };

function describe(locator) {
  return String(locator).replace(/^Locator@/, "");
}

async function poll(locator, what, check, timeoutMs = DEFAULT_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last = "nothing observed yet";
  for (;;) {
    try {
      const { ok, seen } = await check();
      if (ok) return;
      last = seen;
    } catch (err) {
      last = String(err?.message ?? err).split("\n")[0];
    }
    if (Date.now() >= deadline) {
      throw new Error(`expected ${describe(locator)} ${what} within ${timeoutMs} ms; last saw: ${last}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

const normalize = (text) => text.replace(/\s+/g, " ").trim();

export function expect(locator, { timeout } = {}) {
  const run = (what, check) => poll(locator, what, check, timeout);
  return {
    toBeVisible: () =>
      run("to be visible", async () => ({ ok: await locator.isVisible(), seen: `count=${await locator.count()}, not visible` })),
    toBeHidden: () => run("to be hidden", async () => ({ ok: !(await locator.isVisible()), seen: "visible" })),
    toBeAttached: () => run("to be in the page", async () => ({ ok: (await locator.count()) > 0, seen: "absent" })),
    toHaveCount: (n) =>
      run(`to match ${n} elements`, async () => {
        const count = await locator.count();
        return { ok: count === n, seen: `${count} elements` };
      }),
    toContainText: (expected) =>
      run(`to contain text ${JSON.stringify(expected)}`, async () => {
        const text = normalize(await locator.innerText(QUICK));
        return { ok: normalize(expected).length === 0 || text.includes(normalize(expected)), seen: JSON.stringify(text.slice(0, 500)) };
      }),
    toHaveText: (expected) =>
      run(`to have text ${JSON.stringify(expected)}`, async () => {
        const text = normalize(await locator.innerText(QUICK));
        return { ok: text === normalize(expected), seen: JSON.stringify(text.slice(0, 500)) };
      }),
    toHaveAttribute: (name, expected) =>
      run(`to have ${name}=${JSON.stringify(expected)}`, async () => {
        const value = await locator.getAttribute(name, QUICK);
        return { ok: value === expected, seen: JSON.stringify(value) };
      }),
    toHaveValue: (expected) =>
      run(`to have value ${JSON.stringify(expected)}`, async () => {
        const value = await locator.inputValue(QUICK);
        return { ok: value === expected, seen: JSON.stringify(value) };
      }),
    toBeChecked: () => run("to be checked", async () => ({ ok: await locator.isChecked(QUICK), seen: "unchecked" })),
    toBeDisabled: () => run("to be disabled", async () => ({ ok: await locator.isDisabled(QUICK), seen: "enabled" })),
    toBeFocused: () =>
      run("to be focused", async () => {
        const focused = await locator.evaluate((el) => el === document.activeElement, undefined, QUICK);
        const active = await locator.page().evaluate(() => {
          const el = document.activeElement;
          return el ? `${el.tagName.toLowerCase()} "${(el.textContent ?? "").trim().slice(0, 60)}"` : "nothing";
        });
        return { ok: focused, seen: `focus on ${active}` };
      }),
  };
}
