// Helpers for the browser tests: a headless Chromium from the machine (Debian's package, not a
// browser download; playwright-core brings only the driver) pointed at a running Fawkes server.
import { chromium } from "playwright-core";

// The machine's network is closed: without these Chromium keeps trying to reach Google's
// services (sync, component updates, QUIC probes) and logs or stalls on every refusal.
const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  // Containers often give /dev/shm only 64 MB, which a renderer can run out of.
  "--disable-dev-shm-usage",
];

/** A headless Chromium; close it in an `after` hook. */
export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
    headless: true,
    args: ARGS,
    timeout: 30_000,
  });
}

/** The server under test, e.g. http://127.0.0.1:41234 (no trailing slash). */
export function baseUrl() {
  const url = process.env.FAWKES_URL;
  if (!url) throw new Error("FAWKES_URL is not set: run these through `cargo test --test browser`");
  return url.replace(/\/+$/, "");
}

/** Resolves once the page's main LiveView has joined over its socket. */
export async function waitConnected(page, timeout = 10_000) {
  await page.waitForSelector("[data-phx-main].phx-connected", { timeout });
}

/**
 * Collects what the page reports as broken: console errors, uncaught exceptions and failed
 * requests. Attach before navigating; assert `errors` is empty at the end of the test.
 */
export function collectErrors(page) {
  const errors = [];
  page.on("console", (msg) => {
    if (msg.type() === "error") errors.push(`console: ${msg.text()}`);
  });
  page.on("pageerror", (err) => errors.push(`uncaught: ${err.message}`));
  page.on("requestfailed", (req) =>
    errors.push(`request failed: ${req.url()} (${req.failure()?.errorText ?? "?"})`),
  );
  return errors;
}
