// The official phoenix client against a cluster: FAWKES_URLS names three nodes of one cluster
// (run by `cargo test --test cluster`). A client on one node sees, through phoenix.js's Presence,
// the users joined on the others; a second tab adds a meta and closing it removes only that one.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Socket, Presence } from "phoenix";
import WebSocket from "ws";

const bases = (process.env.FAWKES_URLS || "").split(",").filter(Boolean);
assert.equal(bases.length, 3, "FAWKES_URLS must name three nodes");
const [nodeA, nodeB, nodeC] = bases;

const sockets = [];
after(() => sockets.forEach((socket) => socket.disconnect()));

let counter = 0;
async function register(base, prefix) {
  const username = `${prefix}${process.pid % 1000}x${Date.now() % 100000}x${counter++}`;
  const response = await fetch(`${base}/api/v1/auth/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ email: `${username}@example.com`, username, password: `password-of-${username}` }),
  });
  assert.equal(response.status, 201);
  const body = await response.json();
  return { token: body.access_token, id: body.user.id };
}

function waitFor(check, ms, what) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      if (check()) return resolve();
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

async function joinedChannel(base, token, topic) {
  const socket = new Socket(`${base.replace(/^http/, "ws")}/socket`, { transport: WebSocket, params: { token } });
  sockets.push(socket);
  socket.connect();
  const channel = socket.channel(topic, {});
  const presence = new Presence(channel);
  await new Promise((resolve, reject) => channel.join().receive("ok", resolve).receive("error", reject).receive("timeout", reject));
  return { socket, channel, presence };
}

test("Presence on node B shows the users joined on A and C, tab by tab", async () => {
  const ada = await register(nodeA, "ada");
  const bob = await register(nodeA, "bob");
  const carol = await register(nodeA, "carol");
  const topic = "room:lobby";
  const watcher = await joinedChannel(nodeB, ada.token, topic);
  const metas = (id) => {
    const found = watcher.presence.list((key, { metas }) => [key, metas.length]).find(([key]) => key === id);
    return found ? found[1] : 0;
  };
  await joinedChannel(nodeA, bob.token, topic);
  await joinedChannel(nodeC, carol.token, topic);
  await waitFor(() => metas(bob.id) === 1 && metas(carol.id) === 1, 10000, "users on A and C in B's presence");

  const secondTab = await joinedChannel(nodeC, bob.token, topic);
  await waitFor(() => metas(bob.id) === 2, 10000, "bob's second tab (on C)");
  secondTab.socket.disconnect();
  await waitFor(() => metas(bob.id) === 1, 10000, "closing the tab removes only its meta");
  assert.equal(metas(carol.id), 1);
  assert.equal(metas(ada.id), 1);
});
