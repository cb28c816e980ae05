// The ledger's cryptography in the browser (WebCrypto: SHA-256 and Ed25519): checking an inclusion proof
// against the genesis validators, and signing a transaction exactly as the medchain CLI does
// (node/transaction.py, primitives/signing.py, primitives/merkle.py, node/proofs.py).
import { bytesToHex, concat, equalBytes, hexToBytes, pack, unpack } from "./msgpack.js";

const DOMAIN_TX = new TextEncoder().encode("medchain/v1/tx");
const DOMAIN_COMMIT = new TextEncoder().encode("medchain/v1/commit");
export const PROOF_FORMAT = "medchain-inclusion-proof/v1";

// Body tags of node/healthcare/transactions.py's BODY_CODEC.
export const TAGS = {
  Anchor: 1, EnrolMember: 2, RevokeMember: 3, GrantLicence: 4, RevokeLicence: 5, RegisterPatient: 6, AddRecord: 7,
  AmendRecord: 8, GrantConsent: 9, RevokeConsent: 10, RecordAccess: 11, EraseRecords: 12, Commission: 13, Ship: 14,
  Receive: 15, Dispense: 16, Recall: 17, Quarantine: 18, Release: 19, Destroy: 20, ScanAlert: 21,
};
export const KIND_OF_TAG = Object.fromEntries(Object.entries(TAGS).map(([k, v]) => [v, k]));

export function cryptoAvailable() {
  return Boolean(globalThis.crypto && crypto.subtle);
}

function needCrypto() {
  if (!cryptoAvailable()) {
    throw new Error("this browser gives no WebCrypto here: open the explorer over HTTPS or on localhost");
  }
}

export async function sha256(bytes) {
  needCrypto();
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

function signedBytes(domain, chainId, payload) {
  return pack([domain, chainId, payload]);
}

async function ed25519Verify(publicKey, message, signature) {
  if (signature.length !== 64 || publicKey.length !== 32) return false;
  try {
    const key = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

function quorum(n) {
  const f = Math.floor((n - 1) / 3);
  return Math.floor((n + f) / 2) + 1;
}

class InvalidProof extends Error {}

function fail(reason) {
  throw new InvalidProof(reason);
}

// What a proof proves on the genesis' chain, checked here with nothing but the genesis file:
// {height, blockHash, txId, txIndex, signer, kind, body} or an Error saying why it proves nothing.
export async function checkProof(doc, genesis) {
  needCrypto();
  if (!doc || doc.format !== PROOF_FORMAT) fail(`not a ${PROOF_FORMAT} document`);
  if (Array.isArray(doc.validator_changes) && doc.validator_changes.length) {
    // Following validator-set changes means replaying the ledger's governance rules (node/governance.py),
    // which this page does not do: say so rather than fail on a certificate of a later set.
    fail(`this proof follows ${doc.validator_changes.length} validator-set change(s), which the browser does not ` +
         "replay: check it with 'medchain proof verify'");
  }
  let raw;
  try {
    raw = Object.fromEntries(["tx", "merkle_proof", "header", "certificate"].map((k) => [k, hexToBytes(doc[k])]));
  } catch {
    fail("malformed proof: an encoded member is not hex");
  }
  let header, cert, path, tx;
  try {
    header = unpack(raw.header);
    cert = unpack(raw.certificate);
    path = unpack(raw.merkle_proof);
    tx = unpack(raw.tx);
  } catch (err) {
    fail(`malformed proof: ${err.message}`);
  }
  if (!Array.isArray(header) || header.length !== 9) fail("malformed proof: the header is not a block header");
  const [chainId, height, , proposer, , timestampMs, txRoot, txCount] = header;
  if (chainId !== genesis.chain_id) fail(`proof is for chain ${chainId}, the genesis is ${genesis.chain_id}`);
  const blockHash = await sha256(raw.header);
  if (!Array.isArray(cert) || cert.length !== 4) fail("malformed proof: the certificate");
  const [certHeight, certView, certHash, votes] = cert;
  if (!(certHash instanceof Uint8Array) || !equalBytes(certHash, blockHash) || certHeight !== height) {
    fail("the certificate is not for this block header");
  }
  const validators = genesis.validators.map((v) => hexToBytes(v.key));
  const message = signedBytes(DOMAIN_COMMIT, genesis.chain_id, pack([certHeight, certView, certHash]));
  const seen = new Set();
  for (const vote of votes) {
    const [index, signature] = vote;
    if (seen.has(index)) fail(`invalid commit certificate: validator ${index} voted twice`);
    seen.add(index);
    if (!(index < validators.length) || !(await ed25519Verify(validators[index], message, signature))) {
      fail(`invalid commit certificate: bad signature from validator ${index}`);
    }
  }
  if (seen.size < quorum(validators.length)) {
    fail(`invalid commit certificate: ${seen.size} votes, a quorum is ${quorum(validators.length)}`);
  }
  const [index, leafCount, steps] = path;
  if (leafCount !== txCount) fail("the Merkle path does not match the block's transaction count");
  if (!(index >= 0 && index < leafCount)) fail("the Merkle path's index is outside the block");
  const sides = [];
  for (let pos = index, width = leafCount; width > 1; pos = Math.floor(pos / 2), width = Math.floor((width + 1) / 2)) {
    if ((pos ^ 1) < width) sides.push((pos ^ 1) < pos);
  }
  if (sides.length !== steps.length) fail("the Merkle path has the wrong number of steps");
  let acc = await sha256(concat(Uint8Array.of(0), raw.tx));
  for (let i = 0; i < steps.length; i++) {
    const [sibling, onLeft] = steps[i];
    if (onLeft !== sides[i]) fail("the Merkle path's sides do not fit its index");
    acc = await sha256(onLeft ? concat(Uint8Array.of(1), sibling, acc) : concat(Uint8Array.of(1), acc, sibling));
  }
  if (!equalBytes(acc, txRoot)) fail("the Merkle path does not lead to the block's tx_root");
  if (!Array.isArray(tx) || tx.length !== 6) fail("the proven bytes are not a transaction");
  const [txChain, signer, nonce, signedMs, body, signature] = tx;
  const txMessage = signedBytes(DOMAIN_TX, txChain, pack([signer, nonce, signedMs, body]));
  if (txChain !== genesis.chain_id || !(await ed25519Verify(signer, txMessage, signature))) {
    fail("the transaction's signature does not verify on this chain");
  }
  const txId = bytesToHex(await sha256(raw.tx));
  const derived = { chain_id: chainId, height, block_hash: bytesToHex(blockHash), tx_id: txId, tx_index: index };
  for (const [name, value] of Object.entries(derived)) {
    if (doc[name] !== value) fail(`${name} says ${doc[name]} but the verified bytes give ${value}`);
  }
  let decoded;
  try {
    decoded = unpack(body);
  } catch {
    decoded = null;
  }
  const kind = Array.isArray(decoded) ? KIND_OF_TAG[decoded[0]] || null : null;
  return {
    height, blockHash: bytesToHex(blockHash), txId, txIndex: index, signer: bytesToHex(signer),
    signedMs, blockMs: timestampMs, proposer: genesis.validators[proposer]?.name || "?", kind,
    fields: Array.isArray(decoded) ? decoded.slice(1) : null,
  };
}

// ---------------------------------------------------------------- signing

function b64url(bytes) {
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

// An Ed25519 signer from a 32-byte seed and its public key (WebCrypto imports a private key as JWK).
export async function signer(seed, publicKey) {
  needCrypto();
  const jwk = { kty: "OKP", crv: "Ed25519", d: b64url(seed), x: b64url(publicKey), ext: false };
  const key = await crypto.subtle.importKey("jwk", jwk, { name: "Ed25519" }, false, ["sign"]);
  const check = await crypto.subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
  const probe = new TextEncoder().encode("medchain key check");
  const sig = new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, probe));
  if (!(await crypto.subtle.verify({ name: "Ed25519" }, check, sig, probe))) {
    throw new Error("the key file's public key is not its seed's");
  }
  return {
    publicKey,
    async sign(message) {
      return new Uint8Array(await crypto.subtle.sign({ name: "Ed25519" }, key, message));
    },
  };
}

// A body as the ledger encodes it: [tag, field, ...].
export function encodeBody(kind, fieldValues) {
  if (!(kind in TAGS)) throw new Error(`unknown transaction kind ${kind}`);
  return pack([TAGS[kind], ...fieldValues]);
}

// The canonical bytes of a signed transaction (node.transaction.sign_transaction), nonce and time given
// or drawn here; with the same key, nonce, time and body they are the CLI's bytes (Ed25519 is deterministic).
export async function signTransaction(key, chainId, body, { nonce = null, timestampMs = null } = {}) {
  const n = nonce || crypto.getRandomValues(new Uint8Array(16));
  const t = timestampMs === null ? Date.now() : timestampMs;
  const payload = pack([key.publicKey, n, t, body]);
  const signature = await key.sign(signedBytes(DOMAIN_TX, chainId, payload));
  return pack([chainId, key.publicKey, n, t, body, signature]);
}

export { bytesToHex, hexToBytes };

// ---------------------------------------------------------------- keys and submission

// A key file as medchain writes it ({"type": "ed25519", "public": hex, "seed": hex}), read in this page only.
export async function readKeyFile(file) {
  let doc;
  try {
    doc = JSON.parse(await file.text());
  } catch {
    throw new Error(`${file.name} is not a JSON key file`);
  }
  let seed;
  try {
    seed = hexToBytes(doc.seed);
  } catch {
    throw new Error(`${file.name} has no hex 'seed'`);
  }
  if (seed.length !== 32) throw new Error(`${file.name}: the seed must be 32 bytes`);
  if (typeof doc.public !== "string") throw new Error(`${file.name} has no 'public' key`);
  return signer(seed, hexToBytes(doc.public));
}

export async function patientId(publicKey) {
  const digest = await sha256(concat(new TextEncoder().encode("medchain/v1/patient"), publicKey));
  return bytesToHex(digest.slice(0, 16));
}

// Post signed bytes and wait for the commit: the node's TxStatus (committed or rejected), or an Error.
export async function submit(txBytes, timeoutS = 30) {
  const response = await fetch(`/txs?wait=commit&timeout=${timeoutS}`, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ tx: bytesToHex(txBytes) }),
  });
  const doc = await response.json().catch(() => null);
  if (!response.ok) throw new Error(doc?.message ? `${doc.message} (${doc.error})` : `HTTP ${response.status}`);
  return doc;
}

// The key in a file input, read in this page (an Error when this browser cannot sign here).
export async function keyFromInput(input) {
  const file = input.files[0];
  if (!file) return null;
  needCrypto();
  return readKeyFile(file);
}

// Sign a body of this kind with key, submit it and wait: its status once committed, else an Error saying why.
export async function commitBody(key, chainId, kind, fieldValues) {
  const status = await submit(await signTransaction(key, chainId, encodeBody(kind, fieldValues)));
  if (status.status !== "committed") {
    throw new Error(`${kind} ${status.status}: ${[status.code, status.message].filter(Boolean).join(" ")}`);
  }
  return status;
}
