import { api, blockLink, download, el, errorBox, fields, frame, num, query, when } from "./common.js";

const main = frame("Transaction", "blocks.html");
const id = (query("id") || "").trim();

function value(v) {
  if (v === null || v === undefined) return el("span", { class: "muted" }, "none");
  if (Array.isArray(v)) {
    if (!v.length) return el("span", { class: "muted" }, "none");
    return el("ol", { start: 0 }, v.map((x) => el("li", {}, value(x))));
  }
  if (typeof v === "object") return fields(Object.entries(v).map(([k, x]) => [k, value(x)]));
  if (typeof v === "string" && /^[0-9a-f]{32,}$/.test(v)) return el("code", {}, v);
  return String(v);
}

function statusBadge(s) {
  const cls = s.status === "committed" ? "ok" : s.status === "rejected" ? "bad" : "warn";
  return el("span", { class: `badge ${cls}`, id: "tx-status" }, s.status);
}

async function show() {
  main.append(el("h1", {}, "Transaction"));
  let tx;
  try {
    tx = await api(`/txs/${encodeURIComponent(id)}/decoded`);
  } catch (err) {
    main.append(errorBox(err));
    return;
  }
  const s = tx.status;
  const proofButton = el("button", { type: "button", id: "download-proof", onclick: getProof }, "Download inclusion proof");
  proofButton.disabled = s.status !== "committed" && s.status !== "rejected";
  const signer = tx.signer;
  main.append(
    fields([
      ["Id", el("code", { id: "tx-id" }, tx.tx_id)],
      ["Kind", el("strong", { id: "tx-kind" }, tx.kind || "undecodable")],
      ["Status", statusBadge(s)],
      s.height !== undefined ? ["Block", el("span", {}, blockLink(s.height), ` position ${s.index}`)] : null,
      s.code !== undefined ? ["Result", el("span", { class: s.code === "ok" ? "ok" : "bad", id: "tx-code" }, s.code, s.message ? ` — ${s.message}` : "")] : null,
      signer ? ["Signer", el("span", { id: "tx-signer" },
        signer.org ? `${signer.org}` : "unknown organisation", signer.role ? ` · ${signer.role}` : "",
        signer.active === false ? " · revoked" : "", " ", el("code", {}, signer.key))] : null,
      tx.timestamp_ms !== null ? ["Signed at", when(tx.timestamp_ms)] : null,
      ["Size", `${num(tx.size)} bytes`],
      tx.error ? ["Decoding", el("span", { class: "error" }, tx.error)] : null,
    ]),
    el("h2", {}, "Body"),
    tx.body ? value(tx.body) : el("p", { class: "muted" }, "The bytes do not decode as a transaction of this ledger."),
    el("h2", {}, "Proof"),
    el("p", {}, "A self-contained inclusion proof: check it with ", el("code", {}, "medchain proof verify FILE --genesis genesis.json"), ", trusting no node."),
    el("p", {}, proofButton),
  );

  async function getProof() {
    try {
      const proof = await api(`/proofs/${encodeURIComponent(tx.tx_id)}`);
      download(`proof-${tx.tx_id.slice(0, 16)}.json`, JSON.stringify(proof, null, 2));
    } catch (err) {
      main.append(errorBox(err));
    }
  }
}

show();
