// The browser harness works end to end: Chromium starts, reaches the server and runs a page's
// scripts. The Swagger UI is the one page that exists before the live pages do.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { baseUrl, collectErrors, launch } from "./lib.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

test("the API docs render their operations in Chromium", async () => {
  const page = await browser.newPage();
  const errors = collectErrors(page);
  const response = await page.goto(`${baseUrl()}/api/docs/`);
  assert.equal(response?.status(), 200);
  // Swagger UI builds the list in the browser from /api/openapi.json.
  await page.waitForSelector(".opblock", { timeout: 15_000 });
  const operations = await page.locator(".opblock").count();
  assert.ok(operations > 10, `only ${operations} operations shown`);
  assert.ok(
    await page.getByText("/api/v1/auth/login").first().isVisible(),
    "the login operation is listed",
  );
  assert.deepEqual(errors, []);
  await page.close();
});
