// Conformance: the official `phoenix` client (npm, pinned in package-lock.json) against a
// running Fawkes server whose address is in FAWKES_URL. Run by `cargo test --test conformance`.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { Socket, LongPoll, Presence } from "phoenix";
import WebSocket from "ws";

const base = process.env.FAWKES_URL;
assert.ok(base, "FAWKES_URL must point at a running Fawkes server");
const socketUrl = `${base.replace(/^http/, "ws")}/socket`;

let counter = 0;
const unique = (prefix) => `${prefix}${process.pid % 1000}x${Date.now() % 100000}x${counter++}`;

async function api(method, path, token, body) {
  const headers = { "content-type": "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(`${base}/api/v1${path}`, { method, headers, body: body && JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

async function register(prefix = "u") {
  const username = unique(prefix);
  const password = `password-of-${username}`;
  const { status, body } = await api("POST", "/auth/register", null, { email: `${username}@example.com`, username, password });
  assert.equal(status, 201, JSON.stringify(body));
  return { username, password, token: body.access_token, user: body.user };
}

/** An admin's access token: FAWKES_ADMIN_LOGIN / FAWKES_ADMIN_PASSWORD name one the runner created. */
async function adminToken() {
  return login({ username: process.env.FAWKES_ADMIN_LOGIN, password: process.env.FAWKES_ADMIN_PASSWORD });
}

async function login(account) {
  const { status, body } = await api("POST", "/auth/login", null, { login: account.username, password: account.password });
  assert.equal(status, 200, JSON.stringify(body));
  return body.access_token;
}

/** Resolves when `check()` holds; rejects after `ms` so a failure never hangs. */
function waitFor(check, ms = 5000, what = "condition") {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const tick = () => {
      let value;
      try { value = check(); } catch (e) { return reject(e); }
      if (value) return resolve(value);
      if (Date.now() - started > ms) return reject(new Error(`timed out waiting for ${what}`));
      setTimeout(tick, 10);
    };
    tick();
  });
}

/** A `ws` WebSocket that records what it sends and its URL and protocols. */
class RecordingWebSocket extends WebSocket {
  constructor(url, protocols) {
    super(url, protocols);
    this.recordedUrl = url;
    this.offered = protocols;
    this.sent = [];
    RecordingWebSocket.instances.push(this);
  }
  send(data) {
    this.sent.push(data);
    super.send(data);
  }
}
RecordingWebSocket.instances = [];

/** Every socket a test made, so that none keeps the process alive after a failure. */
const sockets = [];
after(() => sockets.forEach((socket) => socket.disconnect()));

function track(socket) {
  sockets.push(socket);
  return socket;
}

function newSocket(opts = {}) {
  const socket = track(new Socket(socketUrl, { transport: RecordingWebSocket, reconnectAfterMs: () => 50, rejoinAfterMs: () => 200, ...opts }));
  const received = [];
  socket.onMessage((message) => received.push(message));
  socket.received = received;
  return socket;
}

function join(channel) {
  return new Promise((resolve, reject) => {
    channel.join()
      .receive("ok", resolve)
      .receive("error", (e) => reject(new Error(`join refused: ${JSON.stringify(e)}`)))
      .receive("timeout", () => reject(new Error("join timed out")));
  });
}

function push(channel, event, payload, timeout) {
  return new Promise((resolve) => {
    channel.push(event, payload, timeout)
      .receive("ok", (response) => resolve({ status: "ok", response }))
      .receive("error", (response) => resolve({ status: "error", response }))
      .receive("timeout", () => resolve({ status: "timeout" }));
  });
}

async function connected(socket) {
  socket.connect();
  await waitFor(() => socket.isConnected(), 5000, "socket open");
}

test("connects with a token param, on vsn 2.0.0", async () => {
  const account = await register();
  const socket = newSocket({ params: { token: account.token } });
  let opened = false;
  socket.onOpen(() => { opened = true; });
  await connected(socket);
  assert.ok(opened);
  const ws = RecordingWebSocket.instances.at(-1);
  assert.match(ws.recordedUrl, /\/socket\/websocket\?token=[^&]+&vsn=2\.0\.0$/);
  socket.disconnect();
});

test("connects with authToken through the subprotocol and gets `phoenix` back", async () => {
  const account = await register();
  const socket = newSocket({ authToken: account.token });
  await connected(socket);
  const ws = RecordingWebSocket.instances.at(-1);
  assert.ok(ws.offered.some((p) => p.startsWith("base64url.bearer.phx.")), "the token was offered as a subprotocol");
  assert.equal(ws.protocol, "phoenix");
  const channel = socket.channel("room:lobby", {});
  await join(channel);
  socket.disconnect();
});

test("a refused connect fires onError and never opens", async () => {
  const socket = newSocket({ params: { token: "not-a-token" } });
  let errors = 0;
  socket.onError(() => { errors += 1; });
  socket.connect();
  await waitFor(() => errors >= 1, 5000, "onError");
  assert.equal(socket.isConnected(), false);
  socket.disconnect();
});

test("heartbeats are answered and ping measures the round trip", async () => {
  const account = await register();
  const socket = newSocket({ params: { token: account.token }, heartbeatIntervalMs: 100 });
  let heartbeatErrors = 0;
  socket.onError(() => { heartbeatErrors += 1; });
  await connected(socket);
  const replies = () => socket.received.filter((m) => m.topic === "phoenix" && m.event === "phx_reply" && m.payload.status === "ok").length;
  await waitFor(() => replies() >= 3, 5000, "three heartbeat replies");
  assert.equal(heartbeatErrors, 0);
  assert.ok(socket.isConnected());
  const rtt = await new Promise((resolve) => socket.ping(resolve));
  assert.equal(typeof rtt, "number");
  socket.disconnect();
});

test("join ok carries the join reply; a refused join errors and retries until left", async () => {
  const owner = await register("own");
  const outsider = await register("out");
  const slug = unique("secret").toLowerCase();
  assert.equal((await api("POST", "/rooms", owner.token, { slug, name: "Secret", is_private: true })).status, 201);

  const socket = newSocket({ params: { token: outsider.token } });
  await connected(socket);
  const lobby = socket.channel("room:lobby", {});
  const reply = await join(lobby);
  assert.equal(reply.room.slug, "lobby");
  assert.equal(lobby.state, "joined");

  const secret = socket.channel(`room:${slug}`, {});
  const refusals = [];
  secret.join().receive("error", (reason) => refusals.push(reason));
  await waitFor(() => refusals.length >= 2, 5000, "the client's rejoin after a refusal");
  assert.deepEqual(refusals[0], { reason: "unauthorized" });
  const joinRefs = socket.received.filter((m) => m.topic === `room:${slug}` && m.event === "phx_reply").map((m) => m.join_ref);
  assert.notEqual(joinRefs[0], joinRefs[1], "each rejoin uses a new join_ref");
  let leaveOk = false;
  secret.leave().receive("ok", () => { leaveOk = true; });
  assert.ok(leaveOk);
  const leaveReplies = () => socket.received.filter((m) => m.topic === `room:${slug}` && m.event === "phx_reply" && m.payload.status === "ok").length;
  await waitFor(() => leaveReplies() >= 1, 5000, "the server's ok for a leave of an unjoined topic");
  socket.disconnect();
});

test("push gets its reply, errors carry a reason, and an unanswered push times out", async () => {
  const account = await register();
  const socket = newSocket({ params: { token: account.token } });
  await connected(socket);
  const channel = socket.channel("room:lobby", {});
  await join(channel);
  const ok = await push(channel, "new_msg", { body: "hello from phoenix.js" });
  assert.equal(ok.status, "ok");
  assert.equal(ok.response.body, "hello from phoenix.js");
  assert.equal(ok.response.author.username, account.username);
  const invalid = await push(channel, "new_msg", { body: "  " });
  assert.equal(invalid.status, "error");
  assert.equal(invalid.response.reason, "validation_failed");
  assert.ok(Array.isArray(invalid.response.details.body));
  const silent = await push(channel, "typing", {}, 300);
  assert.equal(silent.status, "timeout");
  socket.disconnect();
});

test("leave closes the channel and the server confirms it", async () => {
  const account = await register();
  const socket = newSocket({ params: { token: account.token } });
  await connected(socket);
  const channel = socket.channel("room:lobby", {});
  await join(channel);
  const joinRef = channel.joinRef();
  let closed = false;
  channel.onClose(() => { closed = true; });
  channel.leave();
  assert.ok(closed, "phoenix.js closes the channel at once");
  await waitFor(() => socket.received.some((m) => m.event === "phx_close" && m.join_ref === joinRef), 5000, "phx_close from the server");
  // A frame for the left topic, sent below the Channel API, is answered "unmatched topic".
  const ref = socket.makeRef();
  socket.push({ topic: "room:lobby", event: "new_msg", payload: { body: "x" }, ref, join_ref: joinRef });
  await waitFor(() => socket.received.some((m) => m.ref === ref && m.payload.status === "error" && m.payload.response.reason === "unmatched topic"), 5000, "unmatched topic");
  socket.disconnect();
});

test("a second channel on the same topic replaces the first; the stale close is ignored", async () => {
  const account = await register();
  const socket = newSocket({ params: { token: account.token } });
  await connected(socket);
  const first = socket.channel("room:lobby", {});
  await join(first);
  const firstRef = first.joinRef();
  let firstClosed = false;
  first.onClose(() => { firstClosed = true; });
  const second = socket.channel("room:lobby", {});
  await join(second);
  assert.ok(firstClosed);
  assert.equal(second.state, "joined");
  await waitFor(() => socket.received.some((m) => m.event === "phx_close" && m.join_ref === firstRef), 5000, "phx_close for the old join");
  const ok = await push(second, "new_msg", { body: "still joined" });
  assert.equal(ok.status, "ok");
  assert.equal(second.state, "joined", "the close for the old join_ref did not touch the new channel");
  socket.disconnect();
});

test("broadcast reaches everyone; broadcast_from (typing) skips the sender", async () => {
  const ada = await register("ada");
  const bob = await register("bob");
  const a = newSocket({ params: { token: ada.token } });
  const b = newSocket({ params: { token: bob.token } });
  await connected(a);
  await connected(b);
  const ca = a.channel("room:lobby", {});
  const cb = b.channel("room:lobby", {});
  await join(ca);
  await join(cb);
  const got = { a: [], b: [] };
  ca.on("new_msg", (m) => got.a.push(["new_msg", m]));
  const joinRefsSeen = [];
  cb.on("new_msg", (m, _ref, joinRef) => { got.b.push(["new_msg", m]); joinRefsSeen.push(joinRef); });
  ca.on("typing", (m) => got.a.push(["typing", m]));
  cb.on("typing", (m) => got.b.push(["typing", m]));
  const body = unique("shout");
  await push(ca, "new_msg", { body });
  await waitFor(() => got.a.some(([e, m]) => e === "new_msg" && m.body === body) && got.b.some(([e, m]) => e === "new_msg" && m.body === body), 5000, "new_msg on both");
  assert.equal(joinRefsSeen[0], cb.joinRef(), "broadcasts reach the current join of the topic");
  ca.push("typing", {});
  await waitFor(() => got.b.some(([e, m]) => e === "typing" && m.user.username === ada.username), 5000, "typing on bob");
  await new Promise((resolve) => a.ping(resolve));
  assert.ok(!got.a.some(([e]) => e === "typing"), "the typist does not receive its own typing");
  a.disconnect();
  b.disconnect();
});

test("binary pushes go out as binary frames and get a reply", async () => {
  const account = await register();
  const socket = newSocket({ params: { token: account.token } });
  await connected(socket);
  const channel = socket.channel("room:lobby", {});
  await join(channel);
  const ws = RecordingWebSocket.instances.at(-1);
  const reply = await push(channel, "new_msg", new Uint8Array([1, 2, 3]).buffer);
  assert.ok(ws.sent.some((frame) => typeof frame !== "string"), "the client sent a binary frame");
  assert.equal(reply.status, "error");
  assert.deepEqual(reply.response, { reason: "invalid_payload" });
  socket.disconnect();
});

test("a binary broadcast reaches channel.on as an ArrayBuffer", async () => {
  const account = await register();
  const admin = await adminToken();
  const socket = newSocket({ params: { token: account.token } });
  await connected(socket);
  const topic = `notification:${account.user.id}`;
  const channel = socket.channel(topic, {});
  await join(channel);
  const blobs = [];
  channel.on("blob", (payload) => blobs.push(payload));
  const published = await api("POST", "/broadcast", admin, { topic, event: "blob", payload_base64: Buffer.from([1, 2, 3, 250]).toString("base64") });
  assert.equal(published.status, 202, JSON.stringify(published.body));
  await waitFor(() => blobs.length === 1, 5000, "the binary broadcast");
  assert.ok(blobs[0] instanceof ArrayBuffer);
  assert.deepEqual([...new Uint8Array(blobs[0])], [1, 2, 3, 250]);
  socket.disconnect();
});

test("a message posted over REST arrives on the channel", async () => {
  const account = await register();
  const socket = newSocket({ params: { token: account.token } });
  await connected(socket);
  const channel = socket.channel("room:lobby", {});
  await join(channel);
  const seen = [];
  channel.on("new_msg", (m) => seen.push(m));
  const body = unique("rest");
  const posted = await api("POST", "/rooms/lobby/messages", account.token, { body });
  assert.equal(posted.status, 201);
  await waitFor(() => seen.some((m) => m.id === posted.body.id && m.body === body), 5000, "the REST message");
  socket.disconnect();
});

test("a server close (logout) makes the client reconnect and rejoin with a new join_ref", async () => {
  const account = await register();
  let token = account.token;
  const socket = newSocket({ params: () => ({ token }) });
  const closeCodes = [];
  socket.onClose((event) => closeCodes.push(event.code));
  await connected(socket);
  const channel = socket.channel("room:lobby", {});
  const joins = [];
  channel.join().receive("ok", () => joins.push(channel.joinRef()));
  await waitFor(() => joins.length === 1, 5000, "first join");
  let transportErrors = 0;
  channel.onError(() => { transportErrors += 1; });
  const oldToken = token;
  token = await login(account);
  const out = await fetch(`${base}/api/v1/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${oldToken}` } });
  assert.equal(out.status, 204);
  await waitFor(() => closeCodes.includes(1001), 5000, "close 1001");
  assert.ok(transportErrors >= 1);
  await waitFor(() => joins.length >= 2, 5000, "the rejoin");
  assert.notEqual(joins[0], joins.at(-1));
  assert.equal(channel.state, "joined");
  socket.disconnect();
});

test("catch-up: a rejoin with last_seen_id gets the messages missed while away", async () => {
  const account = await register();
  const socket = newSocket({ params: { token: account.token } });
  await connected(socket);
  let lastSeen = null;
  const channel = socket.channel("room:lobby", () => (lastSeen ? { last_seen_id: lastSeen } : {}));
  channel.on("new_msg", (m) => { lastSeen = m.id; });
  const replies = [];
  channel.join().receive("ok", (reply) => replies.push(reply));
  await waitFor(() => replies.length === 1, 5000, "join");
  const first = await push(channel, "new_msg", { body: "before the drop" });
  await waitFor(() => lastSeen === first.response.id, 5000, "own broadcast");
  socket.disconnect();
  const missed = [];
  for (const n of [1, 2, 3]) {
    const posted = await api("POST", "/rooms/lobby/messages", account.token, { body: `missed ${n}` });
    missed.push(posted.body.id);
  }
  socket.connect();
  await waitFor(() => replies.length === 2, 5000, "rejoin after reconnect");
  const caughtUp = replies[1].messages.map((m) => m.id);
  assert.deepEqual(caughtUp.filter((id) => missed.includes(id)), missed);
  assert.equal(replies[1].truncated, false);
  socket.disconnect();
});

test("Presence: onJoin, onLeave, onSync and list() follow the room, tab by tab", async () => {
  const ada = await register("ada");
  const bob = await register("bob");
  const slug = unique("pres").toLowerCase();
  assert.equal((await api("POST", "/rooms", ada.token, { slug, name: "Presence room" })).status, 201);
  const topic = `room:${slug}`;

  const a = newSocket({ params: { token: ada.token } });
  await connected(a);
  const channel = a.channel(topic, {});
  const presence = new Presence(channel);
  const joins = [];
  const leaves = [];
  let syncs = 0;
  presence.onJoin((id, current, added) => joins.push([id, current, added]));
  presence.onLeave((id, current, left) => leaves.push([id, current, left]));
  presence.onSync(() => { syncs += 1; });
  await join(channel);
  await waitFor(() => syncs >= 1 && presence.list().length === 1, 5000, "ada's own presence");
  const metaCount = (id) => (presence.list((key, { metas }) => [key, metas.length]).find(([key]) => key === id) || [id, 0])[1];

  const tab1 = newSocket({ params: { token: bob.token } });
  const tab2 = newSocket({ params: { token: bob.token } });
  await connected(tab1);
  await join(tab1.channel(topic, {}));
  await waitFor(() => metaCount(bob.user.id) === 1, 5000, "bob's first tab");
  assert.ok(joins.some(([id, current]) => id === bob.user.id && current === undefined), "onJoin for a new user gets no current presence");
  await connected(tab2);
  await join(tab2.channel(topic, {}));
  await waitFor(() => metaCount(bob.user.id) === 2, 5000, "bob's second tab");
  assert.equal(presence.list().length, 2, "two users");

  tab2.disconnect();
  await waitFor(() => metaCount(bob.user.id) === 1, 5000, "closing a tab removes only its meta");
  assert.ok(leaves.some(([id, current]) => id === bob.user.id && current.metas.length === 1));
  tab1.disconnect();
  await waitFor(() => metaCount(bob.user.id) === 0 && presence.list().length === 1, 5000, "bob gone");
  a.disconnect();
});

test("Presence state is sent again after a rejoin, so onSync keeps firing", async () => {
  const account = await register();
  let token = account.token;
  const socket = newSocket({ params: () => ({ token }) });
  await connected(socket);
  const channel = socket.channel("room:lobby", {});
  const presence = new Presence(channel);
  let syncs = 0;
  presence.onSync(() => { syncs += 1; });
  await join(channel);
  await waitFor(() => syncs >= 1, 5000, "first sync");
  const before = syncs;
  const oldToken = token;
  token = await login(account);
  await fetch(`${base}/api/v1/auth/logout`, { method: "POST", headers: { authorization: `Bearer ${oldToken}` } });
  await waitFor(() => syncs > before && presence.list().some(({ metas }) => metas.length > 0), 10000, "a sync after the rejoin");
  socket.disconnect();
});

test("LongPoll: open, join, push, receive broadcasts", async () => {
  const account = await register();
  const socket = track(new Socket(socketUrl, { transport: LongPoll, params: { token: account.token } }));
  await connected(socket);
  const channel = socket.channel("room:lobby", {});
  await join(channel);
  const seen = [];
  channel.on("new_msg", (m) => seen.push(m.body));
  const ok = await push(channel, "new_msg", { body: "via longpoll" });
  assert.equal(ok.status, "ok");
  const body = unique("lp-rest");
  await api("POST", "/rooms/lobby/messages", account.token, { body });
  await waitFor(() => seen.includes("via longpoll") && seen.includes(body), 10000, "broadcasts over LongPoll");
  socket.disconnect();
});

test("falls back from a failing WebSocket to LongPoll", async () => {
  const account = await register();
  class BlockedWebSocket extends WebSocket {
    constructor(url, protocols) {
      // A proxy that refuses upgrades: point at a port where nothing listens.
      super("ws://127.0.0.1:9/socket/websocket", protocols);
    }
  }
  const store = new Map();
  const sessionStorage = { getItem: (k) => store.get(k) ?? null, setItem: (k, v) => store.set(k, v), removeItem: (k) => store.delete(k) };
  const socket = track(new Socket(socketUrl, { transport: BlockedWebSocket, longPollFallbackMs: 2500, sessionStorage, params: { token: account.token } }));
  await connected(socket);
  assert.equal(socket.transport, LongPoll);
  const channel = socket.channel("room:lobby", {});
  await join(channel);
  const ok = await push(channel, "new_msg", { body: "after fallback" });
  assert.equal(ok.status, "ok");
  socket.disconnect();
});
