import { api, el, errorBox, frame, query } from "./common.js";

const main = frame("Search", null);
const q = query("q") || "";
document.getElementById("search-q").value = q;
main.append(el("h1", {}, "Search"));

function target(hit) {
  switch (hit.kind) {
    case "block": return `block.html?h=${hit.height}`;
    case "tx": return `tx.html?id=${hit.tx_id}`;
    case "anchor": return null;
    case "pack": return `verify.html?code=${encodeURIComponent(hit.code)}&scan=0`;
    case "patient": return `patient.html?patient=${hit.patient}`;
    case "record": return `patient.html?record=${hit.record_id}`;
    default: return null;
  }
}

try {
  const hit = await api(`/search?q=${encodeURIComponent(q)}`);
  if (hit.kind === "anchor") {
    const a = await api(`/anchors/${hit.sha256}`);
    window.location.replace(`tx.html?id=${a.tx_id}`);
  } else {
    window.location.replace(target(hit));
  }
} catch (err) {
  main.append(errorBox(err), el("p", {}, "Search takes a block height, a block hash, a transaction id, a document's SHA-256, a patient or record id, or a GS1 code in any written form."));
}
