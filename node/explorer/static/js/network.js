import { api, bytes, clear, el, errorBox, frame, liveBadge, num, ago, stream } from "./common.js";
import { LiveChart } from "./chart.js";

const main = frame("Network", "index.html");
const cards = document.getElementById("cards");
const tbody = document.querySelector("#members tbody");
const log = document.getElementById("log");
const badge = liveBadge();
document.getElementById("live").append(badge);
const chart = new LiveChart(document.getElementById("chart"), [
  { name: "committed", colour: "#0b57b0", unit: "tx/s" },
  { name: "latency p50", colour: "#bf5b00", unit: "ms" },
]);

let last = null; // the last /network answer
let lastView = null;
let lastEvidence = null;
let streamState = null;
const perSecond = new Map(); // second -> txs committed in it

function note(text, flag = false, chartLabel = null) {
  if (chartLabel) {
    chart.mark(Date.now(), chartLabel);
    chart.canvas.dataset.marks = String(chart.marks.length);
  }
  log.prepend(el("li", { class: flag ? "flag" : null }, `${new Date().toLocaleTimeString("en-GB")}  ${text}`));
  while (log.children.length > 200) log.lastChild.remove();
}

function card(key, value, id) {
  return el("div", { class: "card" }, el("div", { class: "k" }, key), el("div", { class: "v", id }, value));
}

function render(doc) {
  const s = doc.node;
  clear(cards,
    card("Height", num(s.height), "height"),
    card("View", num(s.view), "view"),
    card("Primary", s.primary, "primary"),
    card("Consensus", s.in_view_change ? "changing view" : s.syncing ? "catching up" : "in step", "phase"),
    card("Peers", `${s.peers.length} connected`, "peers"),
    card("Mempool", `${num(s.mempool.txs)} tx · ${bytes(s.mempool.bytes)}`, "mempool"),
    card("Last commit", ago(doc.last_commit_ms), "last-commit"),
    card("View changes", num(doc.view_changes), "view-changes"),
    card("Evidence", num(doc.evidence), "evidence"),
    card("Role", `${s.role} ${s.node_id}`, "role"),
  );
  document.getElementById("height").dataset.height = String(s.height);
  clear(tbody, doc.members.map((m) => el("tr", { class: m.connected ? null : "flag", dataset: { name: m.name } },
    el("th", { scope: "row" }, m.name, m.self ? " (this node)" : "", m.primary ? " · primary" : ""),
    el("td", {}, m.org || "-"),
    el("td", {}, m.role),
    el("td", {}, el("span", { class: `badge ${m.connected ? "ok" : "bad"}` }, m.connected ? "up" : "down")),
    el("td", { class: "num" }, m.height === null ? "-" : num(m.height)),
    el("td", { class: "num" }, m.view === null ? "-" : `${num(m.view)}${m.in_view_change ? " (changing)" : ""}`),
    el("td", { class: "num" }, m.mempool_txs === null ? "-" : num(m.mempool_txs)),
    el("td", {}, m.last_commit_ms === null ? "-" : ago(m.last_commit_ms)),
    el("td", { class: "num" }, m.peers === null ? "-" : String(m.peers.length)),
    el("td", { class: "num" }, m.self ? "" : bytes(m.bytes_in)),
    el("td", { class: "num" }, m.self ? "" : bytes(m.bytes_out)),
  )));
  if (lastView !== null && s.view !== lastView) note(`view change: view ${s.view}, primary ${s.primary}`, true, `view ${s.view}`);
  if (lastEvidence !== null && doc.evidence > lastEvidence) note(`equivocation evidence recorded (${doc.evidence} items)`, true, "evidence");
  lastView = s.view;
  lastEvidence = doc.evidence;
}

async function refresh() {
  try {
    last = await api("/network");
    render(last);
    main.querySelector(".error")?.remove();
  } catch (err) {
    if (!main.querySelector(".error")) main.prepend(errorBox(err));
    badge.set("reconnecting");
  }
}

function onCommit(e) {
  const second = Math.floor(Date.now() / 1000);
  perSecond.set(second, (perSecond.get(second) || 0) + e.txs);
  if (e.latency_ms !== null) chart.add(1, Date.now(), e.latency_ms);
  const h = document.getElementById("height");
  if (h && e.height > Number(h.dataset.height || 0)) {
    h.textContent = num(e.height);
    h.dataset.height = String(e.height);
  }
  if (lastView !== null && e.view !== lastView) {
    note(`view change: block ${num(e.height)} committed in view ${e.view}`, true, `view ${e.view}`);
    lastView = e.view;
  }
  if (lastEvidence !== null && e.evidence > lastEvidence) {
    note(`equivocation evidence recorded (${e.evidence} items)`, true, "evidence");
    lastEvidence = e.evidence;
  }
  if (e.rejected) note(`block ${num(e.height)}: ${e.rejected} of ${e.txs} transactions refused by the rules`);
}

setInterval(() => {
  // one point a second: the transactions committed in the second that just ended
  const second = Math.floor(Date.now() / 1000) - 1;
  chart.add(0, second * 1000, perSecond.get(second) || 0);
  for (const k of perSecond.keys()) if (k < second - 5) perSecond.delete(k);
  chart.draw();
}, 1000);
setInterval(refresh, 2000);
refresh();
stream("/events", {
  onEvent: (kind, data) => { if (kind === "commit") onCommit(data); },
  onOpen: () => { note("commit stream open"); refresh(); },
  onState: (state) => {
    if (state === streamState) return;
    streamState = state;
    badge.set(state);
    if (state !== "live") note("commit stream lost; reconnecting", true);
  },
});
