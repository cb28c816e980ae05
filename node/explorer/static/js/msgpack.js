// The ledger's canonical msgpack (primitives/codec.py): what a browser needs to check proofs and sign
// transactions byte for byte as the medchain CLI does.  Values: null, booleans, non-negative integers
// (Number, or BigInt above 2^53), strings (UTF-8), Uint8Array (msgpack bin) and arrays; no maps, no floats,
// as the ledger's records have none.

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true });

export function hexToBytes(hex) {
  if (typeof hex !== "string" || hex.length % 2 || !/^[0-9a-fA-F]*$/.test(hex)) throw new Error("not hex");
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function bytesToHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function equalBytes(a, b) {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------- encoding

export function pack(value) {
  const out = [];
  write(value, out);
  return concat(...out);
}

function head(kind8, kind16, kind32, n, out) {
  if (n <= 0xff && kind8 !== null) out.push(Uint8Array.of(kind8, n));
  else if (n <= 0xffff) out.push(Uint8Array.of(kind16, n >> 8, n & 0xff));
  else out.push(Uint8Array.of(kind32, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
}

function writeUint(n, out) {
  if (typeof n === "bigint") {
    if (n < 0n || n >= 1n << 64n) throw new Error("integer out of range");
    if (n <= BigInt(Number.MAX_SAFE_INTEGER)) return writeUint(Number(n), out);
    const b = new Uint8Array(9);
    b[0] = 0xcf;
    new DataView(b.buffer).setBigUint64(1, n);
    out.push(b);
    return undefined;
  }
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`not a non-negative integer: ${n}`);
  if (n <= 0x7f) out.push(Uint8Array.of(n));
  else if (n <= 0xff) out.push(Uint8Array.of(0xcc, n));
  else if (n <= 0xffff) out.push(Uint8Array.of(0xcd, n >> 8, n & 0xff));
  else if (n <= 0xffffffff) out.push(Uint8Array.of(0xce, n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff));
  else {
    const b = new Uint8Array(9);
    b[0] = 0xcf;
    new DataView(b.buffer).setBigUint64(1, BigInt(n));
    out.push(b);
  }
  return undefined;
}

function write(v, out) {
  if (v === null || v === undefined) out.push(Uint8Array.of(0xc0));
  else if (v === false) out.push(Uint8Array.of(0xc2));
  else if (v === true) out.push(Uint8Array.of(0xc3));
  else if (typeof v === "number" || typeof v === "bigint") writeUint(v, out);
  else if (typeof v === "string") {
    const b = utf8.encode(v);
    if (b.length < 32) out.push(Uint8Array.of(0xa0 | b.length));
    else head(0xd9, 0xda, 0xdb, b.length, out);
    out.push(b);
  } else if (v instanceof Uint8Array) {
    head(0xc4, 0xc5, 0xc6, v.length, out);
    out.push(v);
  } else if (Array.isArray(v)) {
    if (v.length < 16) out.push(Uint8Array.of(0x90 | v.length));
    else head(null, 0xdc, 0xdd, v.length, out);
    for (const x of v) write(x, out);
  } else throw new Error(`cannot encode ${typeof v}`);
}

// ---------------------------------------------------------------- decoding

export function unpack(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let at = 0;
  const need = (n) => {
    if (at + n > bytes.length) throw new Error("truncated msgpack");
  };
  const u8 = () => { need(1); return bytes[at++]; };
  const u16 = () => { need(2); const v = view.getUint16(at); at += 2; return v; };
  const u32 = () => { need(4); const v = view.getUint32(at); at += 4; return v; };
  const take = (n) => { need(n); const v = bytes.slice(at, at + n); at += n; return v; };
  const str = (n) => fromUtf8.decode(take(n));
  const arr = (n, depth) => {
    if (depth > 32) throw new Error("msgpack nested too deep");
    const out = [];
    for (let i = 0; i < n; i++) out.push(read(depth + 1));
    return out;
  };
  function read(depth) {
    const t = u8();
    if (t <= 0x7f) return t;
    if (t >= 0xe0) return t - 0x100;
    if ((t & 0xf0) === 0x90) return arr(t & 0x0f, depth);
    if ((t & 0xe0) === 0xa0) return str(t & 0x1f);
    switch (t) {
      case 0xc0: return null;
      case 0xc2: return false;
      case 0xc3: return true;
      case 0xc4: return take(u8());
      case 0xc5: return take(u16());
      case 0xc6: return take(u32());
      case 0xcc: return u8();
      case 0xcd: return u16();
      case 0xce: return u32();
      case 0xcf: {
        need(8);
        const v = view.getBigUint64(at);
        at += 8;
        return v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
      }
      case 0xd0: { need(1); const v = view.getInt8(at); at += 1; return v; }
      case 0xd1: { need(2); const v = view.getInt16(at); at += 2; return v; }
      case 0xd2: { need(4); const v = view.getInt32(at); at += 4; return v; }
      case 0xd9: return str(u8());
      case 0xda: return str(u16());
      case 0xdb: return str(u32());
      case 0xdc: return arr(u16(), depth);
      case 0xdd: return arr(u32(), depth);
      default: throw new Error(`msgpack type 0x${t.toString(16)} is not used by the ledger`);
    }
  }
  const value = read(0);
  if (at !== bytes.length) throw new Error("trailing bytes after msgpack value");
  return value;
}
