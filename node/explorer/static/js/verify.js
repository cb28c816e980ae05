import { api, blockLink, clear, el, errorBox, frame, query, txLink, when } from "./common.js";
import { checkProof, cryptoAvailable } from "./ledger.js";

const main = frame("Verify a medicine", "verify.html");
const input = el("input", {
  id: "code", name: "code", type: "text", autocomplete: "off", spellcheck: "false", required: true,
  placeholder: "(01)09506000000428(17)281201(10)LOT1(21)PK0001",
});
const result = el("div", { id: "result", "aria-live": "polite" });
const scanButton = el("button", { type: "button", class: "secondary", id: "scan", hidden: true }, "Scan with camera");
const video = el("video", { id: "camera", hidden: true, playsinline: true, muted: true });
main.append(
  el("h1", {}, "Verify a medicine"),
  el("p", {}, "Type or paste the code printed on the pack (the 2D barcode's text): the element string, the ",
    el("code", {}, "(01)…(21)…"), " form, or a GS1 Digital Link. Every node of the network gives the same answer."),
  el("form", { id: "verify-form", onsubmit: (e) => { e.preventDefault(); verify(input.value); } },
    el("div", { class: "row" },
      el("div", { class: "grow" }, el("label", { for: "code" }, "GS1 code"), input),
      el("div", {}, el("button", { type: "submit", id: "verify-button" }, "Verify")),
      el("div", {}, scanButton))),
  video,
  result,
);

const VERDICTS = {
  genuine: ["ok", "Genuine", "This pack was commissioned by its manufacturer and has not been dispensed."],
  unknown: ["bad", "Unknown code", "No pack with this GTIN and serial was ever commissioned: it may be counterfeit. Do not dispense."],
  suspect: ["bad", "Suspect", "The pack exists, but the lot or expiry printed on it differs from the record. Do not dispense."],
  clone: ["bad", "Clone: already dispensed", "This serial was already dispensed: the pack in hand is a copy. Do not dispense."],
  destroyed: ["bad", "Destroyed", "This pack was recorded as destroyed: it should not exist. Do not dispense."],
  recalled: ["bad", "Recalled", "The pack's lot is recalled. Do not dispense."],
  quarantined: ["warn", "Quarantined", "The pack is held in quarantine pending investigation. Do not dispense."],
  expired: ["warn", "Expired", "The pack is past its expiry date. Do not dispense."],
  dispensed: ["warn", "Dispensed", "This pack was dispensed to a patient: a pack offered again with this code is a clone."],
};

function verdictKey(status, info, verified) {
  if (verified) return "genuine";
  if (status === "unknown") return info === "Suspect" ? "suspect" : "unknown";
  if (status === "dispensed") return "clone";
  if (VERDICTS[status]) return status;
  return "suspect";
}

const EVENT_TEXT = {
  commission: (e) => `Commissioned by ${e.org}`,
  ship: (e) => `Shipped by ${e.org} to ${e.other_org}`,
  receive: (e) => `Received by ${e.org} from ${e.other_org}`,
  dispense: (e) => `Dispensed by ${e.org}`,
  recall: (e) => `Lot recalled by ${e.org}`,
  quarantine: (e) => `Quarantined by ${e.org}`,
  release: (e) => `Released from quarantine by ${e.org}`,
  destroy: (e) => `Destroyed, recorded by ${e.org}`,
};

// Does the proven transaction say what the event says, about this pack?
function binds(event, proven, pack) {
  const want = event.kind.charAt(0).toUpperCase() + event.kind.slice(1);
  if (proven.kind !== want) return `the proof is of a ${proven.kind} transaction, the event is a ${event.kind}`;
  if (proven.txId !== event.tx_id) return "the proof is of another transaction";
  if (proven.height !== event.height) return "the proof is of another block";
  const f = proven.fields;
  const isPack = (ref) => ref[0] === pack.gtin && ref[1] === pack.serial;
  const isLot = (ref) => ref[0] === pack.gtin && ref[1] === pack.lot;
  const ok = {
    Commission: () => f[0] === pack.gtin && f[3].includes(pack.serial),
    Ship: () => f[0] === event.ref && (f[2].some(isPack) || f[3].some(isLot)),
    Receive: () => f[0] === event.ref,
    Dispense: () => f[0] === pack.gtin && f[1] === pack.serial,
    Recall: () => f[0] === pack.gtin && f[1] === pack.lot,
    Quarantine: () => f[0] === pack.gtin && (f[2] === pack.serial || f[1] === pack.lot),
    Release: () => f[0] === pack.gtin && (f[2] === pack.serial || f[1] === pack.lot),
    Destroy: () => f[0].some(isPack),
  }[proven.kind];
  if (ok && !ok()) return "the proven transaction is about another pack";
  return null;
}

function render(doc, scanned) {
  const pack = doc.pack;
  const key = !scanned && doc.status === "dispensed" ? "dispensed" : verdictKey(doc.status, doc.additionalInfo, doc.verified);
  const [cls, title, advice] = VERDICTS[key];
  const reason = [doc.verificationFailureReason, doc.additionalInfo].filter(Boolean).join(" / ");
  const box = el("section", { class: `verdict ${cls}`, id: "verdict", dataset: { verdict: key, status: doc.status },
    "aria-labelledby": "verdict-title" },
  el("div", { class: "title", id: "verdict-title" }, title),
  el("p", {}, advice),
  el("p", {}, "GS1: ", el("strong", {}, doc.verified ? "verified" : "not verified"), `, status ${doc.status}`,
    reason ? ` (${reason})` : ""),
  pack && pack.recalled ? el("p", {}, `Recall reason: ${pack.recalled}`) : null,
  pack && pack.quarantined ? el("p", {}, `Quarantine reason: ${pack.quarantined}`) : null,
  doc.alert ? el("p", { id: "alert-filed" }, "An alert was filed with the regulator: ",
    doc.alert.tx_id ? txLink(doc.alert.tx_id) : JSON.stringify(doc.alert)) : null,
  scanned ? null : el("p", { class: "muted" }, "Looked up from search: not recorded as a scan, no alert filed."));
  const parts = [box];
  if (pack) {
    parts.push(el("h2", {}, "The pack"), el("p", {},
      `GTIN ${pack.gtin}, serial ${pack.serial}, lot ${pack.lot}, expiry ${pack.expiry}; made by ${pack.manufacturer}; ` +
      `now held by ${pack.custodian}.`));
    const items = pack.history.map((e) => el("li", { dataset: { kind: e.kind, tx: e.tx_id } },
      el("strong", {}, (EVENT_TEXT[e.kind] || ((x) => `${x.kind} by ${x.org}`))(e)),
      e.ref && e.kind !== "ship" && e.kind !== "receive" ? ` — ${e.ref}` : "",
      el("br"), el("span", { class: "muted" }, when(e.time_ms), " · block "), blockLink(e.height),
      el("span", { class: "muted" }, " · tx "), txLink(e.tx_id),
      el("span", { class: "proof-check" })));
    const summary = el("p", { id: "proof-summary", "aria-live": "polite" });
    const genesisFile = el("input", { type: "file", id: "genesis-file", accept: "application/json,.json" });
    const button = el("button", { type: "button", id: "check-proofs" }, "Verify these proofs yourself");
    button.addEventListener("click", () => checkAll(pack, items, summary, genesisFile.files[0] || null));
    parts.push(el("h2", {}, "Journey"), el("ol", { class: "timeline", id: "journey" }, items),
      el("h2", {}, "Check it yourself"),
      el("p", {}, "Each event comes with an inclusion proof: the transaction, its Merkle path and the block's commit " +
        "certificate. This browser checks them against the validators of the genesis file (this node's, or a copy " +
        "you trust), trusting no node."),
      el("div", { class: "row" },
        el("div", {}, el("label", { for: "genesis-file" }, "Genesis file (optional)"), genesisFile),
        el("div", {}, button)),
      summary);
    if (!cryptoAvailable()) {
      button.disabled = true;
      summary.textContent = "This browser offers no WebCrypto on this page: open the explorer over HTTPS or on localhost.";
    }
  }
  clear(result, parts);
}

async function checkAll(pack, items, summary, file) {
  let genesis;
  try {
    genesis = file ? JSON.parse(await file.text()) : await api("/genesis");
  } catch (err) {
    summary.textContent = `Could not read the genesis: ${err.message}`;
    return;
  }
  let good = 0;
  for (const [i, e] of pack.history.entries()) {
    const mark = items[i].querySelector(".proof-check");
    let problem = null;
    try {
      if (!e.proof) throw new Error("no proof was served with this event");
      const proven = await checkProof(e.proof, genesis);
      problem = binds(e, proven, pack);
    } catch (err) {
      problem = err.message;
    }
    items[i].dataset.proof = problem ? "bad" : "ok";
    clear(mark, problem
      ? el("span", { class: "bad" }, ` · ✗ ${problem}`)
      : el("span", { class: "ok" }, " · ✓ proven"));
    if (!problem) good += 1;
  }
  summary.dataset.good = String(good);
  summary.dataset.total = String(pack.history.length);
  summary.textContent = `${good} of ${pack.history.length} events proven in this browser against the ` +
    `${genesis.validators.length} validators of chain ${genesis.chain_id}` + (file ? " (your genesis file)." : " (this node's genesis).");
}

async function verify(code) {
  const text = code.trim();
  if (!text) return;
  const url = new URL(window.location.href);
  url.searchParams.set("code", text);
  url.searchParams.delete("scan");
  window.history.replaceState(null, "", url);
  clear(result, el("p", { class: "muted" }, "Checking…"));
  try {
    render(await api("/drugs/verify", { method: "POST", body: { code: text, scanned_by: "explorer" } }), true);
  } catch (err) {
    clear(result, errorBox(err));
  }
}

async function lookup(code) {
  // from search: the pack as the ledger holds it, without recording a scan
  try {
    const hit = await api(`/search?q=${encodeURIComponent(code)}`);
    const pack = await api(`/drugs/packs/${hit.gtin}/${encodeURIComponent(hit.serial)}`);
    const verified = pack.status === "active" || pack.status === "in_transit";
    render({ code: hit, verified, status: pack.status, verificationFailureReason: null,
      additionalInfo: pack.info, pack, alert: null }, false);
  } catch (err) {
    clear(result, errorBox(err));
  }
}

if ("BarcodeDetector" in window && navigator.mediaDevices?.getUserMedia) {
  scanButton.hidden = false;
  scanButton.addEventListener("click", async () => {
    try {
      const detector = new window.BarcodeDetector({ formats: ["data_matrix", "qr_code", "code_128"] });
      const stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      const stop = () => { stream.getTracks().forEach((t) => t.stop()); video.hidden = true; };
      const tick = async () => {
        const codes = await detector.detect(video).catch(() => []);
        if (codes.length) {
          stop();
          input.value = codes[0].rawValue;
          verify(codes[0].rawValue);
        } else if (!video.hidden) requestAnimationFrame(tick);
      };
      tick();
    } catch (err) {
      clear(result, errorBox(err));
    }
  });
}

const initial = query("code");
if (initial) {
  input.value = initial;
  if (query("scan") === "0") lookup(initial);
  else verify(initial);
}
