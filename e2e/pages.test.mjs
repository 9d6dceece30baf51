// The live pages in a real browser, driven by the unchanged phoenix_live_view client.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { baseUrl, collectErrors, launch, waitConnected } from "./lib.mjs";

let browser;
before(async () => {
  browser = await launch();
});
after(async () => {
  await browser?.close();
});

let counter = 0;
/** A fresh username per test: the tests share one server. */
function uniqueName(prefix) {
  counter += 1;
  return `${prefix}${Date.now() % 100000}${counter}`;
}

async function register(name) {
  const response = await fetch(`${baseUrl()}/api/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: `${name}@example.com`, username: name, password: `password-of-${name}` }),
  });
  assert.equal(response.status, 201, await response.text());
}

/** A new browser context (its own cookies) logged in as `name` through the login form. */
async function loggedIn(name) {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(`${baseUrl()}/login`);
  await waitConnected(page);
  await page.fill("#input-login", name);
  await page.fill("#input-password", `password-of-${name}`);
  await Promise.all([page.waitForURL("**/rooms"), page.click("#login-submit")]);
  await waitConnected(page);
  return { context, page, errors };
}

/** Two freshly registered users, each logged in in a context of its own, both in the lobby. */
async function twoInLobby() {
  const [ada, bob] = [uniqueName("ada"), uniqueName("bob")];
  await register(ada);
  await register(bob);
  const a = await loggedIn(ada);
  const b = await loggedIn(bob);
  for (const page of [a.page, b.page]) {
    await page.goto(`${baseUrl()}/rooms/lobby`);
    await waitConnected(page);
  }
  return { ada, bob, a, b };
}

/** Marks the window; a full reload loses the mark. */
async function mark(page) {
  await page.evaluate(() => {
    window.__notReloaded = true;
  });
}

async function stillMarked(page) {
  return page.evaluate(() => window.__notReloaded === true);
}

test("sign up, log out, log in", async () => {
  const name = uniqueName("sam");
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = collectErrors(page);
  await page.goto(`${baseUrl()}/signup`);
  await waitConnected(page);
  await page.fill("#input-email", `${name}@example.com`);
  await page.fill("#input-username", name);
  await page.fill("#input-password", "a long enough password");
  await Promise.all([page.waitForURL("**/rooms"), page.click("#signup-submit")]);
  await waitConnected(page);
  assert.equal(await page.textContent("#nav-username"), name);
  await Promise.all([page.waitForURL("**/login"), page.click("#logout")]);
  await waitConnected(page);
  await page.fill("#input-login", name);
  await page.fill("#input-password", "a long enough password");
  await Promise.all([page.waitForURL("**/rooms"), page.click("#login-submit")]);
  await waitConnected(page);
  assert.equal(await page.textContent("#nav-username"), name);
  assert.deepEqual(errors, []);
  await context.close();
});

test("a form shows and clears a validation error on change", async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${baseUrl()}/signup`);
  await waitConnected(page);
  await page.fill("#input-username", "ab");
  await page.waitForSelector("#errors-username p", { timeout: 5_000 });
  assert.match(await page.textContent("#errors-username"), /length/);
  await page.fill("#input-username", "abc");
  await page.waitForSelector("#errors-username p", { state: "detached", timeout: 5_000 });
  assert.equal(await page.locator("#errors-username p").count(), 0);
  await context.close();
});

test("a message sent in one browser appears in another without reload; presence shows both", async () => {
  const { ada, bob, a, b } = await twoInLobby();
  await mark(b.page);

  await a.page.waitForSelector(`#online li:has-text("${bob}")`, { timeout: 10_000 });
  await b.page.waitForSelector(`#online li:has-text("${ada}")`, { timeout: 10_000 });

  const text = `hello from ${ada}`;
  await a.page.fill("#message-input", text);
  await a.page.press("#message-input", "Enter");
  await b.page.waitForSelector(`#message-list li:has-text("${text}")`, { timeout: 10_000 });
  assert.equal(await a.page.inputValue("#message-input"), "", "the composer is emptied");
  assert.ok(await stillMarked(b.page), "no reload");

  await b.page.close();
  await a.page.waitForSelector(`#online li:has-text("${bob}")`, { state: "detached", timeout: 10_000 });
  assert.deepEqual(a.errors, []);
  await a.context.close();
  await b.context.close();
});

test("a typing indicator shows while the other user types", async () => {
  const { ada, a, b } = await twoInLobby();
  await a.page.type("#message-input", "typing…");
  await b.page.waitForSelector(`#typing:has-text("${ada} is typing")`, { timeout: 10_000 });
  await a.context.close();
  await b.context.close();
});

test("text typed as <script> is shown as text, never run", async () => {
  const { ada, a, b } = await twoInLobby();
  const evil = `<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"><b>${ada}</b>`;
  await a.page.fill("#message-input", evil);
  await a.page.press("#message-input", "Enter");
  const shown = b.page.locator(`#message-list li:has-text("window.__xss = 1")`);
  await shown.waitFor({ timeout: 10_000 });
  assert.ok((await shown.textContent()).includes(evil), "shown exactly as typed");
  assert.equal(await shown.locator("script, img, b").count(), 0, "no elements were made of it");
  assert.equal(await b.page.evaluate(() => window.__xss), undefined, "nothing ran");
  // The first, plain HTTP render escapes it the same way.
  await b.page.reload();
  await waitConnected(b.page);
  assert.equal(await b.page.evaluate(() => window.__xss), undefined);
  await a.context.close();
  await b.context.close();
});

test("live navigation changes the URL without reload, and Back works", async () => {
  const name = uniqueName("nav");
  await register(name);
  const { context, page, errors } = await loggedIn(name);
  await mark(page);
  await Promise.all([page.waitForURL("**/rooms/lobby"), page.click("#room-lobby")]);
  await waitConnected(page);
  await page.waitForSelector("#message-input");
  assert.ok(await stillMarked(page), "navigated without reload");
  await Promise.all([page.waitForURL("**/profile"), page.click("#nav-profile")]);
  await page.waitForSelector("#username-form");
  await page.goBack();
  await page.waitForURL("**/rooms/lobby");
  await page.waitForSelector("#message-input");
  assert.ok(await stillMarked(page), "Back without reload");
  assert.deepEqual(errors, []);
  await context.close();
});

test("after the server drops the socket the page reconnects and keeps working", async () => {
  const name = uniqueName("re");
  await register(name);
  const { context, page } = await loggedIn(name);
  await page.goto(`${baseUrl()}/rooms/lobby`);
  await waitConnected(page);
  await mark(page);
  // A frame over the server's limit: the server closes the connection (1009).
  await page.evaluate(() => window.liveSocket.socket.conn.send("x".repeat(2 * 1024 * 1024)));
  await page.waitForSelector("[data-phx-main]:not(.phx-connected)", { timeout: 10_000 });
  await waitConnected(page, 20_000);
  const text = `back again ${name}`;
  await page.fill("#message-input", text);
  await page.press("#message-input", "Enter");
  await page.waitForSelector(`#message-list li:has-text("${text}")`, { timeout: 10_000 });
  assert.ok(await stillMarked(page), "rejoined without reload");
  await context.close();
});

test("a non-admin cannot manage users", async () => {
  const name = uniqueName("usr");
  await register(name);
  const { context, page } = await loggedIn(name);
  await page.goto(`${baseUrl()}/admin`);
  await waitConnected(page);
  assert.match(await page.textContent("#admin-denied"), /Only admins/);
  assert.equal(await page.locator("#users").count(), 0);
  await context.close();
});

test("the post editor checks the title as typed; a published post appears on another /posts without reload", async () => {
  const [ada, bob] = [uniqueName("pen"), uniqueName("rdr")];
  await register(ada);
  await register(bob);
  const a = await loggedIn(ada);
  const b = await loggedIn(bob);
  await Promise.all([b.page.waitForURL("**/posts"), b.page.click("#nav-posts")]);
  await waitConnected(b.page);
  await mark(b.page);

  await a.page.goto(`${baseUrl()}/posts`);
  await waitConnected(a.page);
  await Promise.all([a.page.waitForURL("**/posts/new"), a.page.click("#new-post")]);
  await waitConnected(a.page);
  await a.page.fill("#input-title", "x");
  await a.page.fill("#input-title", "");
  await a.page.waitForSelector("#errors-title p", { timeout: 5_000 });
  assert.match(await a.page.textContent("#errors-title"), /blank/);
  const title = `Fresh post by ${ada}`;
  await a.page.fill("#input-title", title);
  await a.page.waitForSelector("#errors-title p", { state: "detached", timeout: 5_000 });
  await a.page.fill("#input-body", "Written in a real browser.");
  await Promise.all([a.page.waitForURL(/\/posts\/[0-9a-f-]{36}$/), a.page.click("#publish")]);
  await a.page.waitForSelector(`#post-status:has-text("published")`, { timeout: 10_000 });
  assert.equal(await a.page.textContent("#post-title"), title);

  await b.page.waitForSelector(`#posts li:has-text("${title}")`, { timeout: 10_000 });
  assert.ok(await stillMarked(b.page), "no reload");
  assert.deepEqual(a.errors, []);
  assert.deepEqual(b.errors, []);
  await a.context.close();
  await b.context.close();
});
