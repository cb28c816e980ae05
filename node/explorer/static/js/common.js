// Shared by every page: the header, calls to this node's API, live event streams, formatting.
// Pages build the DOM with el(): text goes in as text nodes, never as HTML, whatever the ledger holds.

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false));
  return node;
}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// A JSON call to this node; an ApiError carries the node's error code and message.
export async function api(path, { method = "GET", body = undefined, signal = undefined } = {}) {
  let response;
  try {
    response = await fetch(path, {
      method,
      signal,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    throw new ApiError(0, "unreachable", `the node did not answer (${err.message})`);
  }
  const text = await response.text();
  let doc = null;
  try {
    doc = text ? JSON.parse(text) : null;
  } catch {
    throw new ApiError(response.status, "bad-answer", `the node answered ${response.status} with no JSON`);
  }
  if (!response.ok) {
    throw new ApiError(response.status, doc?.error || "error", doc?.message || `HTTP ${response.status}`);
  }
  return doc;
}

const PAGES = [
  ["index.html", "Network"],
  ["blocks.html", "Blocks"],
  ["verify.html", "Verify a medicine"],
  ["patient.html", "Patient"],
  ["regulator.html", "Regulator"],
];

// The header every page shares: the node's name, the pages, and search.
export function frame(title, current) {
  document.title = `${title} · medchain`;
  const nodeName = el("span", { class: "muted", id: "node-name" });
  const search = el("input", {
    type: "search", name: "q", id: "search-q", placeholder: "height, hash, tx id, GS1 code, SHA-256",
    "aria-label": "Search the chain",
  });
  const header = el("header", { class: "site" },
    el("a", { class: "brand", href: "index.html" }, "medchain"),
    nodeName,
    el("nav", { "aria-label": "Pages" }, el("ul", {},
      PAGES.map(([href, label]) => el("li", {},
        el("a", { href, "aria-current": href === current ? "page" : null }, label))))),
    el("form", { role: "search", action: "search.html", method: "get" }, search,
      el("button", { type: "submit" }, "Search")));
  document.body.prepend(el("a", { class: "skip", href: "#main" }, "Skip to content"), header);
  api("/status").then((s) => { nodeName.textContent = `${s.node_id} · ${s.chain_id}`; }).catch(() => {});
  return document.getElementById("main");
}

export function query(name) {
  return new URLSearchParams(window.location.search).get(name);
}

export function shortHex(hex, n = 10) {
  return hex && hex.length > n + 2 ? `${hex.slice(0, n)}…` : hex || "";
}

export function when(ms) {
  if (ms === null || ms === undefined) return "-";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

export function ago(ms) {
  if (ms === null || ms === undefined) return "never";
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 1) return "just now";
  if (s < 120) return `${s.toFixed(0)} s ago`;
  if (s < 7200) return `${(s / 60).toFixed(0)} min ago`;
  return `${(s / 3600).toFixed(1)} h ago`;
}

export function num(n) {
  return n === null || n === undefined ? "-" : Number(n).toLocaleString("en");
}

export function bytes(n) {
  if (n === null || n === undefined) return "-";
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function fields(pairs) {
  return el("dl", { class: "fields" }, pairs.filter(Boolean).flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v)]));
}

export function errorBox(err) {
  const text = err instanceof ApiError && err.code ? `${err.message} (${err.code})` : String(err.message || err);
  return el("p", { class: "error", role: "alert" }, text);
}

export function txLink(id, text = null) {
  return el("a", { href: `tx.html?id=${encodeURIComponent(id)}`, class: "mono" }, text || shortHex(id, 16));
}

export function blockLink(height) {
  return el("a", { href: `block.html?h=${encodeURIComponent(height)}` }, `#${num(height)}`);
}

// A live indicator: "live" while the stream is open, "reconnecting" while it is not.
export function liveBadge() {
  const text = el("span", {}, "connecting");
  const badge = el("span", { class: "live down", role: "status", "aria-live": "polite" }, el("span", { class: "dot" }), text);
  badge.set = (state) => {
    badge.classList.toggle("down", state !== "live");
    text.textContent = state;
    badge.dataset.state = state;
  };
  return badge;
}

// Server-sent events read with fetch, so that a stalled stream is noticed: the node sends a comment at least
// every 15 s, and a stream silent for longer is dropped and opened again (after a pause of the node, a restart,
// a lost connection), with the wait between tries growing to 5 s.  onOpen runs on each (re)connection, so a page
// can fetch what it missed.
export function stream(path, { onEvent, onOpen = () => {}, onState = () => {}, idleMs = 20000 }) {
  let stopped = false;
  let controller = null;
  let delay = 500;

  async function once() {
    controller = new AbortController();
    let timer = null;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(), idleMs);
    };
    arm();
    const response = await fetch(path, { signal: controller.signal, headers: { Accept: "text/event-stream" } });
    if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    let opened = false;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        arm();
        if (!opened) {
          opened = true;
          delay = 500;
          onState("live");
          onOpen();
        }
        buffer += value;
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          let event = "message";
          const data = [];
          for (const line of block.split("\n")) {
            if (line.startsWith("event:")) event = line.slice(6).trim();
            else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
          }
          if (data.length) {
            try {
              onEvent(event, JSON.parse(data.join("\n")));
            } catch (err) {
              console.warn("bad event", err);
            }
          }
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  (async () => {
    while (!stopped) {
      try {
        await once();
      } catch {
        // dropped, refused or stalled: try again below
      }
      if (stopped) break;
      onState("reconnecting");
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, 5000);
    }
  })();
  return { stop() { stopped = true; controller?.abort(); } };
}

export function download(name, text, type = "application/json") {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
