// The chat page: one WebSocket, messages shown once and in order per
// conversation (by sequence number), acknowledged as shown, resent with
// the same id until the gateway says "sent", reconnecting with backoff.
"use strict";
(() => {
  const token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  const $ = (id) => document.getElementById(id);
  const shown = new Map();    // conv -> last seq shown
  const pending = new Map();  // conv -> Map(seq -> frame) waiting for a gap
  const outbox = new Map();   // message id -> frame not yet "sent"
  let ws = null, me = "", backoff = 250;

  function status(s) { $("status").textContent = s; }

  function show(f) {
    const li = document.createElement("li");
    if (f.from === me) li.className = "mine";
    const conv = document.createElement("span");
    conv.className = "conv";
    conv.textContent = f.conv + " #" + f.seq;
    li.append(conv, document.createTextNode(f.from + ": " + (f.body || "")));
    li.dataset.conv = f.conv;
    li.dataset.seq = f.seq;
    $("log").append(li);
  }

  function accept(f) {
    let last = shown.get(f.conv) || 0;
    if (f.seq <= last) return; // already shown: a redelivery
    if (!pending.has(f.conv)) pending.set(f.conv, new Map());
    const p = pending.get(f.conv);
    p.set(f.seq, f);
    while (p.has(last + 1)) {
      show(p.get(last + 1));
      p.delete(last + 1);
      last++;
    }
    if (last > (shown.get(f.conv) || 0)) {
      shown.set(f.conv, last);
      send({type: "ack", conv: f.conv, seq: last});
    }
  }

  function send(f) {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(f));
  }

  function connect() {
    const url = new URL("api/v1/ws", location.href);
    url.protocol = url.protocol.replace("http", "ws");
    url.searchParams.set("access_token", token);
    ws = new WebSocket(url);
    ws.onmessage = (ev) => {
      const f = JSON.parse(ev.data);
      switch (f.type) {
      case "hello":
        me = f.user;
        for (const [c, s] of Object.entries(f.acked || {})) {
          if (s > (shown.get(c) || 0)) shown.set(c, s);
        }
        backoff = 250;
        status("connected as " + me);
        for (const m of outbox.values()) send(m); // resend with the same ids
        break;
      case "msg": accept(f); break;
      case "sent": outbox.delete(f.id); break;
      case "error":
        status("error: " + f.detail);
        if (f.code !== "unavailable" && f.code !== "rate_limited") outbox.delete(f.id);
        else setTimeout(() => { const m = outbox.get(f.id); if (m) send(m); }, f.retry_ms || 1000);
        break;
      }
    };
    ws.onclose = (ev) => {
      status("disconnected (" + ev.code + "); reconnecting");
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }

  function convFor(to) {
    if (to.startsWith("g:") || to.startsWith("d:")) return to;
    return "d:" + [me, to].sort().join(":");
  }

  $("compose").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const body = $("text").value;
    const f = {type: "send", conv: convFor($("to").value.trim()), id: crypto.randomUUID().replaceAll("-", ""), body};
    outbox.set(f.id, f);
    send(f);
    $("text").value = "";
  });

  if (!token) status("no token: open this page with #token=… (see the program's log)");
  else connect();
})();
