// The peer for fawkes-bench: a plain Node `ws` broadcast server, the kind of server one writes
// in an afternoon, speaking just enough of the Phoenix V2 JSON protocol
// ([join_ref, ref, topic, event, payload]) for the bench client's idle and fan-out scenarios:
//
// - any path upgrades to a WebSocket (the bench's `/socket/websocket?token=…&vsn=2.0.0` too);
// - `phx_join` is answered ok and subscribes the socket to the topic; `phx_leave` unsubscribes;
// - `heartbeat` on `phoenix` is answered ok;
// - `POST /broadcast {"topic", "event", "payload"}` encodes the frame once and sends it to every
//   socket joined to the topic, answering `{"delivered": n}`.
//
// Nothing is stored and nobody is authenticated, so it does strictly less work than Fawkes.
// Listens on 127.0.0.1:$PORT (default 4100) and prints `listening <port>` when ready.
import http from "node:http";
import { WebSocketServer } from "ws";

const port = Number(process.env.PORT || 4100);
const topics = new Map(); // topic -> Set of sockets

function reply(ws, joinRef, ref, topic, response = {}) {
  ws.send(JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response }]));
}

function leave(ws, topic) {
  const subscribers = topics.get(topic);
  if (!subscribers) return;
  subscribers.delete(ws);
  if (subscribers.size === 0) topics.delete(topic);
}

const server = http.createServer((req, res) => {
  if (req.method !== "POST" || req.url !== "/broadcast") {
    res.writeHead(404).end();
    return;
  }
  const chunks = [];
  req.on("data", (chunk) => chunks.push(chunk));
  req.on("end", () => {
    let message;
    try {
      message = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    } catch {
      res.writeHead(400).end();
      return;
    }
    const subscribers = topics.get(message.topic) ?? new Set();
    const frame = JSON.stringify([null, null, message.topic, message.event, message.payload ?? {}]);
    for (const ws of subscribers) ws.send(frame);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ delivered: subscribers.size }));
  });
});

const wss = new WebSocketServer({ server, perMessageDeflate: false });
wss.on("connection", (ws) => {
  const joined = new Set();
  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    let frame;
    try {
      frame = JSON.parse(data.toString("utf8"));
    } catch {
      ws.close(1007);
      return;
    }
    if (!Array.isArray(frame) || frame.length !== 5) return;
    const [joinRef, ref, topic, event] = frame;
    if (topic === "phoenix" && event === "heartbeat") {
      reply(ws, null, ref, topic);
    } else if (event === "phx_join") {
      if (!topics.has(topic)) topics.set(topic, new Set());
      topics.get(topic).add(ws);
      joined.add(topic);
      reply(ws, joinRef, ref, topic);
    } else if (event === "phx_leave") {
      leave(ws, topic);
      joined.delete(topic);
      reply(ws, joinRef, ref, topic);
    }
  });
  ws.on("close", () => {
    for (const topic of joined) leave(ws, topic);
  });
});

server.listen(port, "127.0.0.1", () => console.log(`listening ${port}`));
