import { api, blockLink, clear, el, errorBox, frame, liveBadge, num, shortHex, stream, when } from "./common.js";

const main = frame("Blocks", "blocks.html");
const badge = liveBadge();
const tbody = el("tbody");
let oldest = null;
const more = el("button", { type: "button", class: "secondary", onclick: () => load(oldest) }, "Older blocks");
main.append(
  el("h1", {}, "Latest blocks ", badge),
  el("div", { class: "scroll" }, el("table", { id: "blocks" },
    el("caption", {}, "Newest first; new blocks appear as this node commits them"),
    el("thead", {}, el("tr", {},
      el("th", { scope: "col" }, "Height"), el("th", { scope: "col" }, "Hash"),
      el("th", { scope: "col" }, "Proposer"), el("th", { scope: "col" }, "View"),
      el("th", { scope: "col", class: "num" }, "Transactions"), el("th", { scope: "col" }, "Time"))),
    tbody)),
  el("p", {}, more));

function row(b) {
  return el("tr", { dataset: { height: b.height } },
    el("td", {}, blockLink(b.height)),
    el("td", { class: "mono" }, shortHex(b.hash, 16)),
    el("td", {}, b.proposer),
    el("td", {}, num(b.view)),
    el("td", { class: "num" }, num(b.tx_count)),
    el("td", {}, when(b.timestamp_ms)));
}

function newest() {
  const first = tbody.querySelector("tr");
  return first ? Number(first.dataset.height) : 0;
}

async function load(before = null) {
  try {
    const blocks = await api(`/blocks?limit=20${before ? `&before=${before}` : ""}`);
    if (before === null) clear(tbody);
    for (const b of blocks) tbody.append(row(b));
    if (blocks.length) oldest = blocks[blocks.length - 1].height;
    more.disabled = !blocks.length || oldest <= 1;
  } catch (err) {
    main.append(errorBox(err));
  }
}

async function catchUp(height) {
  // blocks this page has not shown yet, up to height (the stream may have skipped some while reconnecting)
  const top = newest();
  if (height <= top) return;
  const blocks = await api(`/blocks?limit=${Math.min(100, height - top)}&before=${height + 1}`);
  for (const b of blocks.reverse()) if (b.height > newest()) tbody.prepend(row(b));
  while (tbody.children.length > 200) tbody.lastChild.remove();
}

await load();
stream("/events", {
  onEvent: (kind, e) => {
    if (kind !== "commit") return;
    if (e.height === newest() + 1) {
      tbody.prepend(row({ height: e.height, hash: e.hash, proposer: e.proposer, view: e.view, tx_count: e.txs, timestamp_ms: e.time_ms }));
      while (tbody.children.length > 200) tbody.lastChild.remove();
    } else {
      catchUp(e.height).catch(() => {});
    }
  },
  onOpen: () => api("/status").then((s) => catchUp(s.height)).catch(() => {}),
  onState: (s) => badge.set(s),
});
