// Takes the screenshots in docs/screenshots/: every page at desktop and phone width, with some
// content in it. Run against a fresh server with an admin account (see bench/../README):
//   bash e2e/screenshots.sh
import { mkdir } from "node:fs/promises";
import { launch, baseUrl, waitConnected } from "./lib.mjs";

const OUT = new URL("../docs/screenshots/", import.meta.url).pathname;
const WIDTHS = { desktop: { width: 1280, height: 800 }, phone: { width: 390, height: 844 } };
const [adminName, adminPassword] = (process.env.ADMIN || "admin:admin-password").split(":");

async function api(path, body, token) {
  const response = await fetch(`${baseUrl()}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return response.json();
}

async function logIn(context, name, password) {
  const page = await context.newPage();
  await page.goto(`${baseUrl()}/login`);
  await waitConnected(page);
  await page.fill("#input-login", name);
  await page.fill("#input-password", password);
  await Promise.all([page.waitForURL("**/rooms"), page.click("#login-submit")]);
  await waitConnected(page);
  return page;
}

async function main() {
  await mkdir(OUT, { recursive: true });
  const grace = await api("/api/v1/auth/register", { email: "grace@example.com", username: "grace", password: "password-of-grace" });
  const token = grace.access_token;
  await api("/api/v1/rooms", { slug: "design", name: "Design reviews", is_private: false }, token);
  for (const body of ["Morning! The new build is on staging.", "Release notes are in the doc, comments welcome.", "I'll look after lunch 👍"]) {
    await api("/api/v1/rooms/lobby/messages", { body }, token);
  }
  for (const content of ["Great explanation of the fan-out path.", "Could you share the benchmark script?"]) {
    await api("/api/v1/videos/intro-to-fawkes/comments", { content }, token);
  }
  const browser = await launch();
  try {
    for (const [label, viewport] of Object.entries(WIDTHS)) {
      const guest = await browser.newContext({ viewport });
      const page = await guest.newPage();
      for (const [name, path] of [["signup", "/signup"], ["login", "/login"]]) {
        await page.goto(`${baseUrl()}${path}`);
        await waitConnected(page);
        await page.screenshot({ path: `${OUT}${name}-${label}.png`, fullPage: true });
      }
      await guest.close();

      const context = await browser.newContext({ viewport });
      const admin = await logIn(context, adminName, adminPassword);
      const other = await logIn(await browser.newContext({ viewport }), "grace", "password-of-grace");
      await other.goto(`${baseUrl()}/rooms/lobby`);
      await waitConnected(other);
      await admin.screenshot({ path: `${OUT}rooms-${label}.png`, fullPage: true });
      await admin.goto(`${baseUrl()}/rooms/lobby`);
      await waitConnected(admin);
      await other.type("#message-input", "typing a reply");
      await admin.waitForSelector("#typing:has-text('is typing')");
      await admin.screenshot({ path: `${OUT}room-${label}.png`, fullPage: true });
      for (const [name, path] of [["video", "/videos/intro-to-fawkes"], ["profile", "/profile"], ["admin", "/admin"]]) {
        await admin.goto(`${baseUrl()}${path}`);
        await waitConnected(admin);
        await admin.screenshot({ path: `${OUT}${name}-${label}.png`, fullPage: true });
      }
      await context.close();
    }
  } finally {
    await browser.close();
  }
}

await main();
