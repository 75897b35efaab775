// The API Playground in a real headless Chromium (Debian's, driven by
// playwright-core; no browser is downloaded). Run by .ci/e2e:
//
//   node playground.cjs BASE_URL USER PASSWORD SCREENSHOT_PATH
//
// Signs in, runs a query and sees a seeded row, shows that a row holding
// HTML is displayed as text with no dialog firing, checks that the page
// fetches nothing from outside the server, and saves a screenshot.
"use strict";

const { chromium } = require("playwright-core");

const [base, user, password, screenshot] = process.argv.slice(2);
const XSS = "<img src=x onerror=alert(1)>";

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function api(session, body) {
  const response = await fetch(`${base}/v1/api`, {
    method: "POST",
    headers: { Authorization: `Bearer ${session.jwt}`, "X-CSRF-Token": session.csrf, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  check(response.ok, `POST /v1/api answered ${response.status}: ${text}`);
  return JSON.parse(text);
}

async function plantHostileRow() {
  const token = Buffer.from(`${user}:${password}`).toString("base64");
  const response = await fetch(`${base}/v1/auth`, {
    method: "POST", headers: { Authorization: `Token ${token}` }, body: "{}",
  });
  check(response.ok, `sign-in for the setup answered ${response.status}`);
  const session = await response.json();
  const found = await api(session, { x: { ds: "Employees", query: { filter: [{ name: { is: XSS } }], limit: 1 } } });
  if (found.data.x.rowsFetched === 0) {
    await api(session, { x: { ds: "Employees", data: [{ _rs: "I", name: XSS, email: "mallory@example.com", active: "Y" }] } });
  }
}

async function runQuery(page, filter) {
  await page.fill("#filter", JSON.stringify(filter));
  await page.click("#run");
  await page.waitForFunction(() => document.querySelector("#summary").textContent.includes("queryElapsed")
    || !document.querySelector("#error").hidden);
  const error = await page.locator("#error");
  check(await error.isHidden(), `the query failed: ${await error.textContent()}`);
}

async function main() {
  await plantHostileRow();
  const origin = new URL(base).origin;
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const outside = [];
  const dialogs = [];
  const consoleErrors = [];
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 860 } });
    context.on("request", (request) => {
      const url = request.url();
      if (!url.startsWith(`${origin}/`) && !url.startsWith("data:")) outside.push(url);
    });
    const page = await context.newPage();
    page.on("dialog", async (dialog) => { dialogs.push(dialog.message()); await dialog.dismiss(); });
    page.on("console", (message) => { if (message.type() === "error") consoleErrors.push(message.text()); });
    page.on("pageerror", (error) => consoleErrors.push(String(error)));

    await page.goto(`${base}/`);
    check((await page.title()).includes("API Playground"), "the page is not the Playground");

    // Sign in and see the session.
    await page.fill("#user", user);
    await page.fill("#password", password);
    await page.click("#signin");
    await page.waitForSelector("#session-panel:not([hidden])");
    check((await page.textContent("#s-user")) === user, "the session does not show the user");
    check((await page.textContent("#s-org")) === "cloudio", "the session does not show the org");

    // The datasource picker comes from /v1/datasources.
    const options = await page.$$eval("#datasource option", (list) => list.map((o) => o.value));
    check(options.includes("Employees"), `the picker lists ${options}`);

    // A query shows a seeded row, the elapsed time and the curl line.
    await page.fill("#limit", "20");
    await runQuery(page, [{ active: { is: "Y" } }]);
    const cells = await page.$$eval("#rows td", (list) => list.map((td) => td.textContent));
    check(cells.includes("Ada Lovelace"), "the seeded row Ada Lovelace is not in the table");
    const curl = await page.textContent("#curl");
    check(curl.startsWith("curl -s -X POST") && curl.includes("/v1/api?csrf="), `curl line: ${curl}`);

    // The helpers write the filter; a row holding HTML is shown as text.
    await page.selectOption("#h-attr", "name");
    await page.selectOption("#h-op", "is");
    await page.fill("#h-value", XSS);
    await page.click("#h-clear");
    await page.click("#h-add");
    const filter = JSON.parse(await page.inputValue("#filter"));
    check(JSON.stringify(filter) === JSON.stringify([{ name: { is: XSS } }]), `helper wrote ${JSON.stringify(filter)}`);
    await page.click("#run");
    await page.waitForFunction((xss) => [...document.querySelectorAll("#rows td")].some((td) => td.textContent === xss), XSS);
    check((await page.$$("#rows img")).length === 0, "the row's HTML became an element");
    await page.waitForTimeout(300); // an onerror handler would have fired by now

    // Everything, the hostile row among the others, for the README.
    await runQuery(page, []);
    const all = await page.$$eval("#rows td", (list) => list.map((td) => td.textContent));
    check(all.includes(XSS) && all.includes("Grace Hopper"), "the full table lacks rows");
    await page.screenshot({ path: screenshot, fullPage: true });

    // A bad filter shows the server's message.
    await page.fill("#filter", JSON.stringify([{ nope: { is: 1 } }]));
    await page.click("#run");
    await page.waitForSelector("#error:not([hidden])");
    const message = await page.textContent("#error");
    check(message.startsWith("400 Invalid Request:"), `the error shown is ${message}`);

    // Sign out.
    await page.click("#signout");
    await page.waitForSelector("#signin-panel:not([hidden])");

    check(dialogs.length === 0, `a dialog fired: ${dialogs}`);
    check(outside.length === 0, `the page fetched from outside the server: ${outside}`);
    const unexpected = consoleErrors.filter((text) => !text.includes("400"));
    check(unexpected.length === 0, `console errors: ${unexpected}`);
    console.log("ok: the Playground signs in, queries, shows HTML as text, fetches nothing outside, signs out");
  } finally {
    await browser.close();
  }
}

main().catch((error) => {
  console.error(`FAILED: ${error.message}`);
  process.exit(1);
});
