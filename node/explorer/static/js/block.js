import { api, blockLink, el, errorBox, fields, frame, num, query, txLink, when } from "./common.js";

const main = frame("Block", "blocks.html");
const height = query("h");
const PAGE = 100;

async function show() {
  let b;
  try {
    b = await api(`/blocks/${encodeURIComponent(height || "")}`);
  } catch (err) {
    main.append(el("h1", {}, "Block"), errorBox(err));
    return;
  }
  const h = b.header;
  document.title = `Block ${b.height} · medchain`;
  const list = el("ol", { id: "txs", start: 0, class: "mono" });
  let shown = 0;
  const more = el("button", { type: "button", class: "secondary", onclick: () => page() }, "More transactions");
  function page() {
    for (const id of b.txs.slice(shown, shown + PAGE)) list.append(el("li", {}, txLink(id, id)));
    shown = Math.min(b.txs.length, shown + PAGE);
    more.hidden = shown >= b.txs.length;
  }
  page();
  const signers = b.certificate.votes.map((v) => v.validator);
  main.append(
    el("h1", {}, `Block ${num(b.height)}`),
    el("p", {}, b.height > 1 ? el("a", { href: `block.html?h=${b.height - 1}` }, "← previous") : null, " ",
      el("a", { href: `block.html?h=${b.height + 1}` }, "next →")),
    fields([
      ["Hash", el("code", {}, b.hash)],
      ["Previous", b.height > 1 ? el("span", {}, blockLink(b.height - 1), " ", el("code", {}, h.prev_hash)) : el("code", {}, h.prev_hash)],
      ["Proposer", h.proposer],
      ["View", num(h.view)],
      ["Time", when(h.timestamp_ms)],
      ["Transactions", num(h.tx_count)],
      ["Merkle root", el("code", {}, h.tx_root)],
      ["State after (app hash)", el("code", {}, h.app_hash)],
      ["Chain", h.chain_id],
    ]),
    el("h2", {}, "Commit certificate"),
    el("p", {}, `Signed in view ${b.certificate.view} by ${signers.length} validators: `, el("span", { id: "signers" }, signers.join(", "))),
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Validator"), el("th", { scope: "col" }, "Signature"))),
      el("tbody", {}, b.certificate.votes.map((v) => el("tr", {}, el("td", {}, v.validator), el("td", { class: "mono" }, v.signature)))))),
    el("h2", {}, `Transactions (${num(b.txs.length)})`),
    list, more);
}

show();
