import { api, blockLink, clear, el, errorBox, fields, frame, num, query, shortHex, txLink, when } from "./common.js";
import { commitBody, hexToBytes, keyFromInput, patientId } from "./ledger.js";

const main = frame("Patient", "patient.html");
let key = null; // the patient's signer: kept in this page, never sent
let pid = query("patient");
let chainId = null;

const keyInput = el("input", { type: "file", id: "key-file", accept: "application/json,.json" });
const who = el("p", { id: "who", "aria-live": "polite" });
const records = el("div", { id: "records" });
const consents = el("div", { id: "consents" });
const accesses = el("div", { id: "accesses" });
const actions = el("div", { id: "actions" });
const message = el("div", { id: "message", "aria-live": "assertive" });

main.append(
  el("h1", {}, "Patient"),
  el("section", { "aria-labelledby": "key-h" },
    el("h2", { id: "key-h" }, "Your key"),
    el("p", {}, "Load your key file to see your records and act on them. The key stays in this page: it signs here, " +
      "and only the signed transaction is sent to the node."),
    el("div", { class: "row" }, el("div", {}, el("label", { for: "key-file" }, "Key file"), keyInput)),
    who),
  message,
  el("section", { "aria-labelledby": "rec-h" }, el("h2", { id: "rec-h" }, "Records"), records),
  el("section", { "aria-labelledby": "con-h" }, el("h2", { id: "con-h" }, "Who may read them"), consents, actions),
  el("section", { "aria-labelledby": "acc-h" }, el("h2", { id: "acc-h" }, "Who read them"), accesses),
);

function say(node) {
  clear(message, node);
}

keyInput.addEventListener("change", async () => {
  try {
    key = await keyFromInput(keyInput);
    if (!key) return;
    pid = await patientId(key.publicKey);
    await refresh();
  } catch (err) {
    key = null;
    say(errorBox(err));
  }
});

async function refresh() {
  if (!pid) {
    clear(who, "No key loaded.");
    return;
  }
  clear(who, key ? "Signed in as patient " : "Viewing patient ", el("code", { id: "patient-id" }, pid),
    key ? " (key loaded in this page)" : " (read only: load the patient's key to act)");
  const status = await api("/status");
  chainId = status.chain_id;
  let patient = null;
  try {
    patient = await api(`/ehr/patients/${pid}`);
  } catch (err) {
    clear(records, errorBox(err));
  }
  if (patient) showRecords(patient);
  showConsents(await api(`/ehr/patients/${pid}/consents`));
  try {
    showAccesses(await api(`/ehr/patients/${pid}/accesses`));
  } catch (err) {
    clear(accesses, errorBox(err));
  }
  showActions();
}

function showRecords(patient) {
  const byType = new Map();
  for (const r of patient.records.filter(Boolean)) {
    if (!byType.has(r.resource_type)) byType.set(r.resource_type, []);
    byType.get(r.resource_type).push(r);
  }
  if (!byType.size) {
    clear(records, el("p", { class: "muted" }, "No records filed."));
    return;
  }
  clear(records, [...byType.entries()].map(([type, list]) => el("div", {},
    el("h3", {}, `${type} (${list.length})`),
    el("div", { class: "scroll" }, el("table", {},
      el("thead", {}, el("tr", {}, ["Record", "Custodian", "Version", "Filed at block", "Reads", "State"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, list.map((r) => el("tr", { dataset: { record: r.record_id } },
        el("td", { class: "mono" }, shortHex(r.record_id, 12)), el("td", {}, r.custodian), el("td", {}, num(r.version)),
        el("td", {}, blockLink(r.created_height)), el("td", {}, num(r.accesses)),
        el("td", {}, r.erased ? el("span", { class: "badge bad" }, `erased at #${r.erased_height}`) : "held")))))))));
}

function grantee(c) {
  return c.grantee_org || (c.grantee_key ? `practitioner ${shortHex(c.grantee_key, 12)}` : "?");
}

function showConsents(list) {
  const active = list.filter((c) => c.active);
  if (!active.length) {
    clear(consents, el("p", { class: "muted", id: "no-consents" }, "No consent in force: only break-glass reads (logged, flagged) are possible."));
    return;
  }
  clear(consents, el("div", { class: "scroll" }, el("table", { id: "consent-table" },
    el("thead", {}, el("tr", {}, ["Grantee", "Records", "Until", "Granted", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, active.map((c) => el("tr", { dataset: { grantee: c.grantee_org || c.grantee_key } },
      el("td", {}, grantee(c)),
      el("td", {}, c.resource_types === "all" ? "all" : c.resource_types.join(", ")),
      el("td", {}, c.expires_ms ? when(c.expires_ms) : "until revoked"),
      el("td", {}, blockLink(c.height), " ", txLink(c.tx_id)),
      el("td", {}, key ? el("button", { type: "button", class: "danger", dataset: { revoke: c.grantee_org || c.grantee_key },
        onclick: () => revoke(c) }, `Revoke ${grantee(c)}`) : null)))))));
}

function showAccesses(list) {
  if (!list.length) {
    clear(accesses, el("p", { class: "muted" }, "Nobody has read your records."));
    return;
  }
  clear(accesses, el("div", { class: "scroll" }, el("table", { id: "access-table" },
    el("caption", {}, "Every read of your records, in ledger order; break-glass reads are flagged in red"),
    el("thead", {}, el("tr", {}, ["When", "Reader", "Organisation", "Record", "Purpose", "Basis", "Block"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, list.map((a) => el("tr", { class: a.break_glass ? "flag" : null },
      el("td", {}, when(a.time_ms)), el("td", { class: "mono" }, shortHex(a.reader, 12)), el("td", {}, a.reader_org || "-"),
      el("td", { class: "mono" }, shortHex(a.record_id, 12)), el("td", {}, a.purpose),
      el("td", {}, a.break_glass ? el("strong", { class: "bad" }, "BREAK-GLASS") : a.basis),
      el("td", {}, blockLink(a.height))))))));
}

async function orgOptions() {
  const orgs = await api("/orgs");
  return orgs.map((o) => el("option", { value: o.id }, `${o.name} (${o.kind})`));
}

async function showActions() {
  if (!key) {
    clear(actions);
    return;
  }
  const orgSelect = el("select", { id: "grant-org" }, el("option", { value: "" }, "an organisation…"), await orgOptions());
  const practitioner = el("input", { id: "grant-key", placeholder: "or a practitioner's key (64 hex)", size: 40 });
  const types = el("input", { id: "grant-types", placeholder: "all (or e.g. Observation,Condition)" });
  const days = el("input", { id: "grant-days", type: "number", min: 1, max: 36500, placeholder: "until revoked" });
  const confirmErase = el("input", { type: "checkbox", id: "erase-confirm" });
  const eraseButton = el("button", { type: "button", class: "danger", id: "erase", disabled: true, onclick: erase }, "Erase all my records");
  confirmErase.addEventListener("change", () => { eraseButton.disabled = !confirmErase.checked; });
  clear(actions,
    el("h3", {}, "Grant a consent"),
    el("form", { id: "grant-form", onsubmit: (e) => { e.preventDefault(); grant(orgSelect.value, practitioner.value, types.value, days.value); } },
      el("div", { class: "row" },
        el("div", {}, el("label", { for: "grant-org" }, "Grantee"), orgSelect),
        el("div", {}, el("label", { for: "grant-key" }, "Practitioner key"), practitioner),
        el("div", {}, el("label", { for: "grant-types" }, "Record types"), types),
        el("div", {}, el("label", { for: "grant-days" }, "Days"), days),
        el("div", {}, el("button", { type: "submit", id: "grant" }, "Grant")))),
    el("h3", {}, "Erase your records"),
    el("p", {}, "The right to erasure: the custodians destroy the content and its keys; the ledger keeps that the " +
      "records existed and were erased, and nothing more. This cannot be undone."),
    el("p", {}, confirmErase, " ", el("label", { for: "erase-confirm" }, "I understand that my records' content will be destroyed for good"), " ", eraseButton));
}

async function sendBody(kind, fieldValues, done) {
  say(el("p", { class: "muted" }, "Signing in this page and submitting…"));
  try {
    const status = await commitBody(key, chainId, kind, fieldValues);
    say(el("p", { class: "ok", id: "done" }, `${done}: committed at block `, blockLink(status.height), " · ", txLink(status.tx_id)));
    await refresh();
  } catch (err) {
    say(errorBox(err));
  }
}

function grant(org, practitionerHex, typesText, daysText) {
  const keyHex = practitionerHex.trim();
  if (!org && !keyHex) return say(errorBox(new Error("choose an organisation or give a practitioner's key")));
  if (org && keyHex) return say(errorBox(new Error("an organisation or a practitioner, not both")));
  let grantee = null;
  if (keyHex) {
    try {
      grantee = hexToBytes(keyHex);
      if (grantee.length !== 32) throw new Error();
    } catch {
      return say(errorBox(new Error("a practitioner's key is 64 hex digits")));
    }
  }
  const names = typesText.split(",").map((t) => t.trim()).filter(Boolean);
  const d = daysText ? Number(daysText) : null;
  const expires = d ? Date.now() + d * 86400000 : null;
  return sendBody("GrantConsent", [org || "", grantee, names, expires], `consent granted to ${org || "the practitioner"}`);
}

function revoke(c) {
  return sendBody("RevokeConsent", [c.grantee_org || "", c.grantee_key ? hexToBytes(c.grantee_key) : null],
    `consent of ${grantee(c)} revoked`);
}

function erase() {
  return sendBody("EraseRecords", [[], true], "every record erased");
}

if (query("record")) {
  api(`/ehr/records/${encodeURIComponent(query("record"))}`).then((r) => { pid = r.patient; refresh(); })
    .catch((err) => say(errorBox(err)));
} else {
  refresh().catch((err) => say(errorBox(err)));
}
