#!/usr/bin/env bash
# Regenerates docs/screenshots/: a fresh server on a throw-away SQLite database, an admin
# account, then e2e/screenshots.mjs in headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
data=$(mktemp -d)
trap 'kill "$server" 2>/dev/null || true; rm -rf "$data"' EXIT
cargo build --quiet
export DATABASE_URL="sqlite://$data/fawkes.db" FAWKES_BIND=127.0.0.1:4077
./target/debug/fawkes migrate
./target/debug/fawkes user create --email admin@example.com --username admin --password admin-password --role admin
./target/debug/fawkes serve & server=$!
for _ in $(seq 50); do curl -sf http://127.0.0.1:4077/health >/dev/null && break; sleep 0.2; done
(cd e2e && npm ci --no-audit --no-fund --silent)
FAWKES_URL=http://127.0.0.1:4077 ADMIN=admin:admin-password node e2e/screenshots.mjs
echo "screenshots written to docs/screenshots/"
