import { api, blockLink, clear, el, errorBox, frame, liveBadge, stream, txLink, when } from "./common.js";
import { bytesToHex, commitBody, keyFromInput } from "./ledger.js";

const main = frame("Regulator", "regulator.html");
const badge = liveBadge();
const alertRows = el("tbody");
const holds = el("div", { id: "holds" });
const licences = el("div", { id: "licences" });
const keyInput = el("input", { type: "file", id: "inspector-key", accept: "application/json,.json" });
const who = el("p", { id: "inspector", "aria-live": "polite" }, "No key loaded: recalls and quarantines need the regulator's admin or inspector key.");
const forms = el("div", { id: "hold-forms" });
const message = el("div", { id: "message", "aria-live": "assertive" });
let key = null;
let chainId = null;
let lastSeq = -1;

main.append(
  el("h1", {}, "Regulator"),
  el("section", { "aria-labelledby": "al-h" },
    el("h2", { id: "al-h" }, "Alerts ", badge),
    el("p", {}, "Codes scanned anywhere in the network that the ledger does not bear out: unknown serials, clones of " +
      "dispensed packs, lot or expiry mismatches. New alerts appear as they are committed."),
    el("div", { class: "scroll" }, el("table", { id: "alerts" },
      el("thead", {}, el("tr", {}, ["#", "When", "Pack", "Reason", "Scanned by", "Reported by", "Block"].map((h) => el("th", { scope: "col" }, h)))),
      alertRows))),
  el("section", { "aria-labelledby": "ho-h" }, el("h2", { id: "ho-h" }, "Recalls and quarantines in force"), holds),
  el("section", { "aria-labelledby": "act-h" }, el("h2", { id: "act-h" }, "Recall or quarantine"),
    el("div", { class: "row" }, el("div", {}, el("label", { for: "inspector-key" }, "Inspector key file"), keyInput)),
    who, message, forms),
  el("section", { "aria-labelledby": "li-h" }, el("h2", { id: "li-h" }, "Licences by organisation"), licences),
);

function alertRow(a) {
  const code = `(01)${a.gtin}${a.expiry ? `(17)${a.expiry}` : ""}${a.lot ? `(10)${a.lot}` : ""}(21)${a.serial}`;
  return el("tr", { class: "flag", dataset: { seq: a.seq } },
    el("td", {}, String(a.seq)), el("td", {}, when(a.time_ms)),
    el("td", {}, el("a", { href: `verify.html?code=${encodeURIComponent(`(01)${a.gtin}(21)${a.serial}`)}&scan=0`, class: "mono" }, code)),
    el("td", {}, a.reason, a.info ? ` / ${a.info}` : ""),
    el("td", {}, a.scanned_by), el("td", {}, a.reporter_org),
    el("td", {}, blockLink(a.height), " ", txLink(a.tx_id, "tx")));
}

function addAlert(a) {
  if (a.seq <= lastSeq) return;
  lastSeq = a.seq;
  alertRows.prepend(alertRow(a));
}

async function loadAlerts() {
  for (;;) {
    const page = await api(`/alerts?limit=1000${lastSeq >= 0 ? `&after=${lastSeq}` : ""}`);
    page.forEach(addAlert);
    if (page.length < 1000) break;
  }
  if (!alertRows.children.length) alertRows.append(el("tr", { id: "no-alerts" }, el("td", { colspan: 7, class: "muted" }, "No alerts.")));
  else document.getElementById("no-alerts")?.remove();
}

async function loadHolds() {
  const list = await api("/drugs/holds");
  if (!list.length) {
    clear(holds, el("p", { class: "muted" }, "None."));
    return;
  }
  clear(holds, el("div", { class: "scroll" }, el("table", { id: "holds-table" },
    el("thead", {}, el("tr", {}, ["What", "GTIN", "Lot / serial", "Reason", "By", "Since"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, list.map((h) => el("tr", { dataset: { kind: h.kind, lot: h.lot || "", serial: h.serial || "" } },
      el("td", {}, h.kind === "recall" ? el("strong", { class: "bad" }, "recall") : el("span", { class: "warn" }, h.kind)),
      el("td", { class: "mono" }, h.gtin), el("td", { class: "mono" }, h.lot || h.serial),
      el("td", {}, h.reason), el("td", {}, h.org || "-"),
      el("td", {}, h.height ? blockLink(h.height) : "-", " ", h.tx_id ? txLink(h.tx_id, "tx") : "")))))));
}

async function loadLicences() {
  const orgs = await api("/orgs");
  clear(licences, el("div", { class: "scroll" }, el("table", { id: "licence-table" },
    el("thead", {}, el("tr", {}, ["Organisation", "Kind", "Nodes", "Licences"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, orgs.map((o) => el("tr", {},
      el("th", { scope: "row" }, o.name, el("br"), el("span", { class: "muted" }, o.id)), el("td", {}, o.kind),
      el("td", {}, o.nodes.join(", ") || "-"),
      el("td", {}, o.licences.length ? el("ul", {}, o.licences.map((l) => el("li", {}, l.kind, l.scope ? ` (${l.scope})` : "", " · ", blockLink(l.granted_height)))) : "none")))))));
}

function say(node) {
  clear(message, node);
}

keyInput.addEventListener("change", async () => {
  try {
    key = await keyFromInput(keyInput);
    if (!key) return;
    chainId = (await api("/status")).chain_id;
    const hex = bytesToHex(key.publicKey);
    const orgs = await api("/orgs");
    const admin = orgs.find((o) => o.admin_key === hex);
    const member = admin ? null : await api(`/members/${hex}`).catch(() => null);
    const role = member ? `${member.role} of ${member.org}${member.active ? "" : " (revoked)"}` : admin ? `admin of ${admin.id}` : "not a member";
    clear(who, "Key loaded in this page: ", el("strong", { id: "inspector-role" }, role), " ", el("code", {}, hex));
    showForms();
  } catch (err) {
    key = null;
    say(errorBox(err));
  }
});

function showForms() {
  const gtin = el("input", { id: "hold-gtin", required: true, placeholder: "09506000000428" });
  const lot = el("input", { id: "hold-lot", placeholder: "lot (AI 10)" });
  const serial = el("input", { id: "hold-serial", placeholder: "or one pack's serial (AI 21)" });
  const reason = el("input", { id: "hold-reason", required: true, placeholder: "why" });
  const action = el("select", { id: "hold-action" },
    el("option", { value: "Recall" }, "Recall the lot"),
    el("option", { value: "Quarantine" }, "Quarantine (lot or pack)"),
    el("option", { value: "Release" }, "Release from quarantine"));
  clear(forms, el("form", { id: "hold-form", onsubmit: (e) => { e.preventDefault(); act(action.value, gtin.value.trim(), lot.value.trim(), serial.value.trim(), reason.value.trim()); } },
    el("div", { class: "row" },
      el("div", {}, el("label", { for: "hold-action" }, "Action"), action),
      el("div", {}, el("label", { for: "hold-gtin" }, "GTIN"), gtin),
      el("div", {}, el("label", { for: "hold-lot" }, "Lot"), lot),
      el("div", {}, el("label", { for: "hold-serial" }, "Serial"), serial),
      el("div", { class: "grow" }, el("label", { for: "hold-reason" }, "Reason"), reason),
      el("div", {}, el("button", { type: "submit", class: "danger", id: "hold-submit" }, "Sign and submit")))));
}

async function act(kind, gtin, lot, serial, reason) {
  let fields;
  if (kind === "Recall") {
    if (!lot) return say(errorBox(new Error("a recall names a lot")));
    fields = [gtin, lot, reason];
  } else {
    if (!lot === !serial) return say(errorBox(new Error("name a lot or a serial, not both")));
    fields = [gtin, lot || null, serial || null, reason];
  }
  say(el("p", { class: "muted" }, "Signing in this page and submitting…"));
  try {
    const status = await commitBody(key, chainId, kind, fields);
    say(el("p", { class: "ok", id: "done" }, `${kind} committed at block `, blockLink(status.height), " · ", txLink(status.tx_id)));
    await loadHolds();
  } catch (err) {
    say(errorBox(err));
  }
  return undefined;
}

await Promise.all([loadAlerts(), loadHolds(), loadLicences()]).catch((err) => main.prepend(errorBox(err)));
stream("/alerts/stream", {
  onEvent: (kind, a) => {
    if (kind !== "alert") return;
    document.getElementById("no-alerts")?.remove();
    addAlert(a);
  },
  onOpen: () => loadAlerts().catch(() => {}),
  onState: (s) => badge.set(s),
});
