// glint certificate check, in the browser (docs/verify.md). No network, no libraries: a strict
// CBOR decoder/encoder, RFC 9162 inclusion proofs, C2SP checkpoint notes, WebCrypto ES256 and
// Ed25519. Inlined into the certificate page by glint.server.pages; the data it checks is the
// page's <script id="glint-data"> (certificate, history, published keys) or a file the user picks
// (a certificate, or a bundle; a format-2 bundle's reveals of sealed values are checked against the
// commitments in its leaves: SHA-256 of the deterministic CBOR [salt, name, value], docs/formats.md).
// Every value shown goes through textContent: nothing from the data is parsed as HTML.
"use strict";
(function () {
  const root = document.documentElement;
  const enc = new TextEncoder();
  const dec = new TextDecoder("utf-8", { fatal: true });

  class Fail extends Error {}
  function fail(msg) { throw new Fail(msg); }

  // --- bytes --------------------------------------------------------------------------------
  function b64dec(s) {
    if (typeof s !== "string" || !/^[A-Za-z0-9+/]*={0,2}$/.test(s) || s.length % 4) fail("not standard base64");
    const bin = atob(s); const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }
  function b64enc(u8) { let s = ""; for (const b of u8) s += String.fromCharCode(b); return btoa(s); }
  function hex(u8) { return Array.from(u8, (b) => b.toString(16).padStart(2, "0")).join(""); }
  function unhex(s) {
    if (typeof s !== "string" || !/^([0-9a-f]{2})*$/.test(s)) fail("not lower-case hex");
    const out = new Uint8Array(s.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = parseInt(s.substr(2 * i, 2), 16);
    return out;
  }
  function cat(...parts) {
    const n = parts.reduce((a, p) => a + p.length, 0); const out = new Uint8Array(n); let o = 0;
    for (const p of parts) { out.set(p, o); o += p.length; }
    return out;
  }
  function eq(a, b) { if (a.length !== b.length) return false; for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false; return true; }
  async function sha256(u8) { return new Uint8Array(await crypto.subtle.digest("SHA-256", u8)); }

  // --- CBOR (RFC 8949), strict: definite lengths only; deterministic form checked by re-encoding --
  class Float { constructor(v) { this.v = v; } }
  class Tag { constructor(tag, value) { this.tag = tag; this.value = value; } }
  const MAX_DEPTH = 16;

  function decode(u8) {
    let p = 0;
    const need = (n) => { if (p + n > u8.length) fail("CBOR ends early"); };
    function arg(ai) {
      if (ai < 24) return ai;
      let n;
      if (ai === 24) { need(1); n = u8[p]; p += 1; }
      else if (ai === 25) { need(2); n = (u8[p] << 8) | u8[p + 1]; p += 2; }
      else if (ai === 26) { need(4); n = ((u8[p] << 24) >>> 0) + (u8[p + 1] << 16) + (u8[p + 2] << 8) + u8[p + 3]; p += 4; }
      else if (ai === 27) {
        need(8); const hi = ((u8[p] << 24) >>> 0) + (u8[p + 1] << 16) + (u8[p + 2] << 8) + u8[p + 3];
        const lo = ((u8[p + 4] << 24) >>> 0) + (u8[p + 5] << 16) + (u8[p + 6] << 8) + u8[p + 7]; p += 8;
        if (hi >= 0x200000) fail("CBOR integer too large for this checker");
        n = hi * 4294967296 + lo;
      } else if (ai === 31) fail("CBOR indefinite length (not deterministic)");
      else fail("CBOR reserved additional information " + ai);
      return n;
    }
    function item(depth) {
      if (depth > MAX_DEPTH) fail("CBOR nested too deeply");
      need(1); const ib = u8[p++]; const mt = ib >> 5, ai = ib & 31;
      if (mt === 7) {
        if (ai === 20) return false; if (ai === 21) return true; if (ai === 22) return null;
        const dv = new DataView(u8.buffer, u8.byteOffset);
        if (ai === 25) { need(2); const h = dv.getUint16(p); p += 2; return new Float(half(h)); }
        if (ai === 26) { need(4); const f = dv.getFloat32(p); p += 4; return new Float(f); }
        if (ai === 27) { need(8); const f = dv.getFloat64(p); p += 8; return new Float(f); }
        fail("CBOR simple value " + ai + " not used by glint");
      }
      const n = arg(ai);
      if (mt === 0) return n;
      if (mt === 1) return -1 - n;
      if (mt === 2) { need(n); const v = u8.slice(p, p + n); p += n; return v; }
      if (mt === 3) { need(n); let v; try { v = dec.decode(u8.subarray(p, p + n)); } catch (e) { fail("CBOR text is not UTF-8"); } p += n; return v; }
      if (mt === 4) { if (n > u8.length - p) fail("CBOR array longer than the data"); const a = []; for (let i = 0; i < n; i++) a.push(item(depth + 1)); return a; }
      if (mt === 5) {
        if (n > u8.length - p) fail("CBOR map longer than the data");
        const m = new Map();
        for (let i = 0; i < n; i++) {
          const k = item(depth + 1);
          if (typeof k !== "string" && typeof k !== "number") fail("CBOR map key is not text or an integer");
          if (m.has(k)) fail("CBOR map has a duplicate key");
          m.set(k, item(depth + 1));
        }
        return m;
      }
      return new Tag(n, item(depth + 1));
    }
    const v = item(0);
    if (p !== u8.length) fail("CBOR has trailing bytes");
    return v;
  }
  function half(h) {
    const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 31, f = h & 1023;
    if (e === 0) return s * f * Math.pow(2, -24);
    if (e === 31) return f ? NaN : s * Infinity;
    return s * (1 + f / 1024) * Math.pow(2, e - 15);
  }
  function halfBits(x) { // the binary16 bits of x if exact, else null (glintcore.cbor._half_bits)
    if (Number.isNaN(x)) return 0x7e00;
    const sign = (x < 0 || Object.is(x, -0)) ? 0x8000 : 0; const a = Math.abs(x);
    if (a === Infinity) return sign | 0x7c00;
    if (a === 0) return sign;
    const sub = a * 16777216;
    if (Number.isInteger(sub) && sub < 1024) return sign | sub;
    if (Math.fround(a) !== a) return null;
    const dv = new DataView(new ArrayBuffer(4)); dv.setFloat32(0, a); const bits = dv.getUint32(0);
    const e = ((bits >>> 23) & 255) - 127, m = bits & 0x7fffff;
    if (e < -14 || e > 15 || (m & 0x1fff)) return null;
    return sign | ((e + 15) << 10) | (m >>> 13);
  }
  function encode(v) {
    const out = [];
    const head = (mt, n) => {
      if (n < 24) out.push((mt << 5) | n);
      else if (n < 256) out.push((mt << 5) | 24, n);
      else if (n < 65536) out.push((mt << 5) | 25, n >> 8, n & 255);
      else if (n < 4294967296) out.push((mt << 5) | 26, (n >>> 24) & 255, (n >> 16) & 255, (n >> 8) & 255, n & 255);
      else { const hi = Math.floor(n / 4294967296), lo = n >>> 0; out.push((mt << 5) | 27, (hi >>> 24) & 255, (hi >> 16) & 255, (hi >> 8) & 255, hi & 255, (lo >>> 24) & 255, (lo >> 16) & 255, (lo >> 8) & 255, lo & 255); }
    };
    function one(x) {
      if (x === false) out.push(0xf4); else if (x === true) out.push(0xf5); else if (x === null) out.push(0xf6);
      else if (typeof x === "number") { if (x >= 0) head(0, x); else head(1, -1 - x); }
      else if (x instanceof Uint8Array) { head(2, x.length); for (const b of x) out.push(b); }
      else if (typeof x === "string") { const b = enc.encode(x); head(3, b.length); for (const c of b) out.push(c); }
      else if (Array.isArray(x)) { head(4, x.length); x.forEach(one); }
      else if (x instanceof Map) {
        const items = Array.from(x, ([k, val]) => [encode(k), val]);
        items.sort((a, b) => { const n = Math.min(a[0].length, b[0].length); for (let i = 0; i < n; i++) if (a[0][i] !== b[0][i]) return a[0][i] - b[0][i]; return a[0].length - b[0].length; });
        head(5, items.length);
        for (const [kb, val] of items) { for (const c of kb) out.push(c); one(val); }
      } else if (x instanceof Tag) { head(6, x.tag); one(x.value); }
      else if (x instanceof Float) {
        const h = halfBits(x.v); const dv = new DataView(new ArrayBuffer(8));
        if (h !== null) out.push(0xf9, h >> 8, h & 255);
        else if (Math.fround(x.v) === x.v) { dv.setFloat32(0, x.v); out.push(0xfa, ...new Uint8Array(dv.buffer, 0, 4)); }
        else { dv.setFloat64(0, x.v); out.push(0xfb, ...new Uint8Array(dv.buffer)); }
      } else fail("cannot encode " + typeof x);
    }
    one(v);
    return new Uint8Array(out);
  }
  function strict(u8, what) { // decode and require the deterministic encoding (RFC 8949 4.2.1)
    const v = decode(u8);
    if (!eq(encode(v), u8)) fail(what + " is not in deterministic CBOR form");
    return v;
  }
  const num = (x) => (x instanceof Float ? x.v : x);
  const isUint = (x) => typeof x === "number" && Number.isInteger(x) && x >= 0;

  // --- the checks ----------------------------------------------------------------------------
  const LEAF_KEYS = ["d", "i", "k", "n", "t", "v", "item", "prev"];
  function leafOf(u8, what) {
    const m = strict(u8, what);
    if (!(m instanceof Map) || m.get("v") !== 1) fail(what + " is not a version-1 event");
    const keys = Array.from(m.keys()).map(String).sort();
    if (keys.join() !== [...LEAF_KEYS].sort().join()) fail(what + " has missing or unknown fields");
    const e = { index: m.get("i"), kind: m.get("k"), item: m.get("item"), seq: m.get("n"), prev: m.get("prev"), time: m.get("t"), data: m.get("d"), raw: u8 };
    if (![e.index, e.seq, e.time].every(isUint)) fail(what + ": index, sequence or time is not an unsigned integer");
    if (typeof e.item !== "string" || typeof e.kind !== "string" || !(e.data instanceof Map)) fail(what + " is malformed");
    if ((e.seq === 0) !== (e.prev === null) || (e.prev !== null && !(e.prev instanceof Uint8Array && e.prev.length === 32))) fail(what + ": chain link is malformed");
    if ((e.kind === "register") !== (e.seq === 0)) fail(what + ": only an item's first event is its register event");
    return e;
  }
  // A format-3 certificate's event claim [data, index, seq, time, item, prev] -> the leaf bytes
  // (glint.ledger.cert.leaf_of): data keys 0-9 stand for DATA_KEYS; kind "verify", version 1.
  const DATA_KEYS = ["res", "fap", "dev", "op", "loc", "coat", "scan", "via", "parts", "sealed"];
  function leafOfEvent(ev) {
    if (!Array.isArray(ev) || ev.length !== 6) fail("the certificate's event is not [data, index, seq, time, item, prev]");
    const [data, index, seq, time, item, prev] = ev;
    if (!(data instanceof Map)) fail("the certificate's event data is not a map");
    const d = new Map();
    for (const [k, v] of data) {
      let name = k;
      if (typeof k === "number" && Number.isInteger(k) && k >= 0 && k < DATA_KEYS.length) name = DATA_KEYS[k];
      else if (typeof k !== "string" || DATA_KEYS.includes(k)) fail("the certificate's event data has a key spelled two ways or not text");
      if (d.has(name)) fail("the certificate's event data has a key twice");
      d.set(name, v);
    }
    if (![index, seq, time].every(isUint) || typeof item !== "string" || !(prev === null || prev instanceof Uint8Array)) fail("the certificate's event is malformed");
    return encode(new Map([["d", d], ["i", index], ["k", "verify"], ["n", seq], ["t", time], ["v", 1], ["item", item], ["prev", prev]]));
  }
  // A format-4 certificate's payload [dt, index, seq, time, item, res, fap, dev, data, hashes] ->
  // {raw: the leaf bytes, iat, logsig, proof} (glint.ledger.cert.leaf_of4; one spelling of each value).
  const RESULTS = ["pass", "fail"];
  const isInt = (x) => typeof x === "number" && Number.isInteger(x);
  const popcount = (n) => { let c = 0; while (n > 0) { c += n % 2; n = Math.floor(n / 2); } return c; };
  function leafOf4(c) {
    if (c.length !== 10) fail("the certificate is not [dt, index, seq, time, item, res, fap, dev, data, hashes]");
    const [dt, index, seq, time, item, res, fap, dev, data, hashes] = c;
    if (![index, seq, time].every(isUint) || time > 253402300799) fail("the certificate's event index, sequence or time is not an unsigned integer");
    if (!isInt(dt) || time + dt < 0 || time + dt > 253402300799) fail("the issue time is not a time");
    if (seq < 1) fail("the certificate's event is malformed");
    const GS1 = /^https:\/\/([^\/]+)\/01\/([0-9]{14})\/21\/([^\/]+)$/;
    let itemText = item;
    if (Array.isArray(item)) { // a GS1 Digital Link id: [host, GTIN, serial]
      const [host, gtin, serial] = item;
      if (item.length !== 3 || typeof host !== "string" || !isUint(gtin) || gtin >= 1e14 || typeof serial !== "string") fail("the certificate's item is not [host, GTIN, serial] of a GS1 Digital Link id");
      itemText = `https://${host}/01/${String(gtin).padStart(14, "0")}/21/${serial}`;
      const m = GS1.exec(itemText);
      if (!m || m[1] !== host || m[3] !== serial) fail("the certificate's item is not [host, GTIN, serial] of a GS1 Digital Link id");
    } else if (typeof item !== "string" || GS1.test(item)) fail("the certificate's item is not text, or a GS1 Digital Link id spelled as text (one spelling: [host, GTIN, serial])");
    if (!isUint(res) || res >= RESULTS.length) fail("the certificate's result is not 0 (pass) or 1 (fail)");
    if (!(fap === null || typeof fap === "number" || fap instanceof Float)) fail("the certificate's fap is not a number");
    const devHex = (x) => typeof x === "string" && /^[0-9a-f]{16}$/.test(x);
    if (!(dev === null || (dev instanceof Uint8Array && dev.length === 8) || (typeof dev === "string" && !devHex(dev)))) fail("the certificate's device id is not 8 bytes, other text or null (one spelling)");
    if (!(data instanceof Map)) fail("the certificate's event data is not a map");
    if (!(hashes instanceof Uint8Array)) fail("the certificate's hashes are not bytes");
    const nProof = 32 * popcount(index), extra = hashes.length - 64 - 32 - nProof;
    if (extra !== 0 && extra !== 32) fail(`the certificate's hashes are not the log signature, the chain head, [the scan digest,] and ${nProof / 32} proof hashes (one per 1 bit of the index)`);
    const d = new Map([["res", RESULTS[res]]]);
    if (fap !== null) d.set("fap", fap);
    if (dev !== null) d.set("dev", dev instanceof Uint8Array ? hex(dev) : dev);
    if (extra) d.set("scan", hashes.slice(96, 128));
    for (const [k, v] of data) {
      let name = k;
      if (typeof k === "number" && Number.isInteger(k) && k >= 0 && k < DATA_KEYS.length) name = DATA_KEYS[k];
      else if (typeof k !== "string" || DATA_KEYS.includes(k)) fail("the certificate's event data has a key spelled two ways or not text");
      if (d.has(name)) fail("the certificate's event data has a key twice (or one that has a slot of its own)");
      d.set(name, v);
    }
    const raw = encode(new Map([["d", d], ["i", index], ["k", "verify"], ["n", seq], ["t", time], ["v", 1], ["item", itemText], ["prev", hashes.slice(64, 96)]]));
    return { raw, iat: time + dt, logsig: hashes.slice(0, 64), proof: hashes.slice(hashes.length - nProof) };
  }
  async function leafHash(u8) { return sha256(cat(new Uint8Array([0]), u8)); }
  async function nodeHash(l, r) { return sha256(cat(new Uint8Array([1]), l, r)); }

  async function rootFromInclusion(leaf, index, size, proof) { // RFC 9162 2.1.3.2
    if (!isUint(index) || !isUint(size) || index >= size) fail(`leaf index ${index} is outside a tree of size ${size}`);
    let fn = index, sn = size - 1, r = leaf;
    for (const p of proof) {
      if (sn === 0) fail(`inclusion proof is too long for index ${index} in size ${size}`);
      if (fn % 2 === 1 || fn === sn) {
        r = await nodeHash(p, r);
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      } else r = await nodeHash(r, p);
      fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
    }
    if (sn !== 0) fail(`inclusion proof is too short for index ${index} in size ${size}`);
    return r;
  }

  async function logKey(vkey) { // C2SP signed-note verifier key: name+keyid+base64(0x01 || key)
    const text = String(vkey).trim(); const a = text.indexOf("+"), b = text.indexOf("+", a + 1);
    if (a < 1 || b < 0) fail("the published log key is not a signed-note verifier key");
    const name = text.slice(0, a), kidHex = text.slice(a + 1, b), raw = b64dec(text.slice(b + 1));
    if (raw.length !== 33 || raw[0] !== 1) fail("the published log key is not an Ed25519 key");
    const pub = raw.slice(1);
    const kid = (await sha256(cat(enc.encode(name + "\n"), new Uint8Array([1]), pub))).slice(0, 4);
    if (hex(kid) !== kidHex) fail("the published log key's id does not match the key");
    return { name, pub, kid, vkey: text, key: await crypto.subtle.importKey("raw", pub, { name: "Ed25519" }, false, ["verify"]) };
  }

  // Run every check on one certificate; returns {checks: [{name, ok, detail}], info}.
  async function check(data) {
    const checks = []; const info = {};
    const step = async (name, fn) => {
      try { const detail = await fn(); checks.push({ name, ok: true, detail }); return true; }
      catch (e) { checks.push({ name, ok: false, detail: e instanceof Fail ? e.message : "internal error: " + e }); return false; }
    };
    const skip = (name, detail) => checks.push({ name, ok: null, detail });
    if (!window.crypto || !crypto.subtle) {
      checks.push({ name: "WebCrypto", ok: false, detail: "this browser offers no WebCrypto here (open the page over HTTPS or as a saved file)" });
      return { checks, info };
    }
    let cose, prot, payload, sig, kid, claims, leaf, issuer, log, fmt, proofB, ckSize, ckSig;
    const go = await step("certificate format", async () => {
      cose = strict(data.cert, "the certificate");
      if (!(cose instanceof Tag) || cose.tag !== 18) fail("not a tagged COSE_Sign1 message (tag 18)");
      const a = cose.value;
      if (!Array.isArray(a) || a.length !== 4 || !(a[0] instanceof Uint8Array) || !(a[1] instanceof Map) || !(a[2] instanceof Uint8Array) || !(a[3] instanceof Uint8Array)) fail("not a COSE_Sign1 array [protected, unprotected, payload, signature]");
      if (a[1].size) fail("unprotected headers are not allowed in a glint certificate");
      [prot, , payload, sig] = a;
      const h = strict(prot, "the protected header");
      if (!(h instanceof Map) || h.get(1) !== -7) fail("the algorithm is not ES256 (-7)");
      kid = h.get(4);
      if (!(kid instanceof Uint8Array) || kid.length !== 8) fail("the certificate names no 8-byte issuer key id");
      if (sig.length !== 64) fail("an ES256 signature is 64 bytes");
      return `COSE_Sign1, ES256, deterministic CBOR, ${data.cert.length} bytes, issuer key ${hex(kid)}`;
    });
    if (!go) return { checks, info };
    const known = await step("issuer key", async () => {
      const k = (data.keys.issuers || []).find((x) => x.kid === hex(kid));
      if (!k) fail(`issuer key ${hex(kid)} is not one of the published issuer keys`);
      if (k.status === "revoked") fail(`issuer key ${hex(kid)} was revoked: its certificates no longer count`);
      if (k.status !== "active") fail(`issuer key ${hex(kid)} has status ${k.status}`);
      const pub = unhex(k.sec1);
      if (pub.length !== 65 || pub[0] !== 4 || hex((await sha256(pub)).slice(0, 8)) !== k.kid) fail("the published key does not match its key id");
      issuer = await crypto.subtle.importKey("raw", pub, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]);
      return `published and not revoked (P-256 ${k.sec1.slice(0, 18)}...)`;
    });
    if (!known) return { checks, info };
    const signed = await step("issuer signature", async () => {
      const tbs = encode(["Signature1", prot, new Uint8Array(0), payload]);
      if (!(await crypto.subtle.verify({ name: "ECDSA", hash: "SHA-256" }, issuer, sig, tbs))) fail("the ES256 signature does not verify with the issuer key");
      return "ES256 signature over the claims verifies (WebCrypto)";
    });
    if (!signed) return { checks, info };
    let iat;
    const claimed = await step("claims", async () => {
      claims = strict(payload, "the claims");
      if (Array.isArray(claims)) { // format 4: one array; the protected header is {alg, kid} alone
        if (strict(prot, "the protected header").size !== 2) fail("a format-4 certificate's protected header is {alg: ES256, kid} alone");
        const c = leafOf4(claims);
        fmt = 4; leaf = leafOf(c.raw, "the certified event"); proofB = c.proof; ckSig = c.logsig; ckSize = leaf.index + 1; iat = c.iat;
      } else {
      if (!(claims instanceof Map)) fail("the claims are not a map or a format-4 array");
      if (claims.get("glint") === 1) fail("certificate format 1 is no longer issued; ask the issuer for a new certificate");
      const ks = Array.from(claims.keys()).map(String).sort().join();
      if (claims.has("glint")) { // format 2: the leaf whole, a proof to a later checkpoint [size, signature]
        if (claims.get("glint") !== 2) fail("not a glint format-2, -3 or -4 certificate");
        if (ks !== ["-1", "-2", "-3", "6", "glint"].sort().join()) fail("the certificate has missing or unknown claims");
        const ck = claims.get(-3);
        if (!Array.isArray(ck) || ck.length !== 2 || !isUint(ck[0]) || !(ck[1] instanceof Uint8Array) || ck[1].length !== 64) fail("the checkpoint is not [size, 64-byte signature]");
        fmt = 2; leaf = leafOf(claims.get(-1), "the certified event"); proofB = claims.get(-2); ckSize = ck[0]; ckSig = ck[1];
      } else { // format 3: the event without its fixed parts, a proof to the tree right after it
        if (ks !== ["-4", "-5", "-6", "6"].sort().join()) fail("the certificate has missing or unknown claims");
        fmt = 3; leaf = leafOf(leafOfEvent(claims.get(-4)), "the certified event");
        proofB = claims.get(-5); ckSig = claims.get(-6); ckSize = leaf.index + 1;
        if (!(ckSig instanceof Uint8Array) || ckSig.length !== 64) fail("the log signature is not 64 bytes");
      }
      iat = claims.get(6);
      if (!isUint(iat)) fail("the issue time is not a time");
      }
      if (leaf.kind !== "verify") fail(`the certified event is a ${leaf.kind} event, not a verification`);
      if (!(proofB instanceof Uint8Array) || proofB.length % 32) fail("the proof is not a list of 32-byte hashes");
      leaf.hash = await leafHash(leaf.raw);
      const res = leaf.data.get("res"), fap = leaf.data.get("fap"), scan = leaf.data.get("scan");
      Object.assign(info, { id: hex(leaf.hash.slice(0, 16)), item: leaf.item, result: res, fap: fap === undefined ? null : num(fap), time: leaf.time, index: leaf.index, issued: iat, scan: scan instanceof Uint8Array ? hex(scan) : null, device: leaf.data.get("dev") || null, head: leaf.prev ? hex(leaf.prev) : null, seq: leaf.seq });
      return `format ${fmt}: the verify event (log index ${leaf.index}, event ${leaf.seq} of the item), its proof and the log's signature`;
    });
    if (!claimed) return { checks, info };
    if (data.id) {
      await step("certificate id", async () => {
        if (info.id !== data.id) fail(`this page is for certificate ${data.id}, but the certificate's event has id ${info.id}`);
        return `${info.id} = SHA-256 of the event (first 16 bytes), as the URL says`;
      });
    }
    let rootH;
    const proved = await step("inclusion proof", async () => {
      const proof = [];
      for (let i = 0; i < proofB.length; i += 32) proof.push(proofB.slice(i, i + 32));
      rootH = await rootFromInclusion(leaf.hash, leaf.index, ckSize, proof);
      return `${proof.length} hashes lead from event ${leaf.index} to the root ${hex(rootH).slice(0, 16)}... of the log's tree of ${ckSize} events (RFC 9162)`;
    });
    if (!proved) return { checks, info };
    const logged = await step("log signature", async () => {
      log = await logKey(data.keys.log && data.keys.log.vkey);
      const size = ckSize;
      const text = `${log.name}\n${size}\n${b64enc(rootH)}\n`;
      if (!(await crypto.subtle.verify({ name: "Ed25519" }, log.key, ckSig, enc.encode(text)))) fail(`the checkpoint signature does not verify with the log key ${log.name}+${hex(log.kid)}: the event, the proof or the checkpoint was altered, or another log signed it`);
      info.log = log.name; info.size = size;
      return `Ed25519 signature of log ${log.name} over its checkpoint (size ${size}) verifies (WebCrypto)`;
    });
    if (!logged) return { checks, info };
    const pass = await step("result", async () => {
      if (info.result !== "pass") fail(`the certified scan's result is ${JSON.stringify(info.result)}, not pass`);
      return "the certified scan matched the item's enrolled coating (pass)";
    });
    if (!pass) return { checks, info };
    let chained = false;
    if (data.history === null || data.history === undefined) {
      skip("history", "not available here (a bundle file or the online page carries it): only the certified event was checked");
    } else {
      chained = await step("history", async () => {
        if (data.history.length !== leaf.seq) fail(`the history has ${data.history.length} events, the item's chain has ${leaf.seq} before the certified one`);
        let prev = null; const events = [];
        for (let n = 0; n <= data.history.length; n++) {
          const e = n < data.history.length ? leafOf(data.history[n], `history event ${n}`) : leaf;
          if (n < data.history.length) e.hash = await leafHash(e.raw);
          if (e.item !== leaf.item || e.seq !== n) fail(`history event ${n} belongs to another item or position`);
          if (n === 0 ? e.prev !== null : !(e.prev instanceof Uint8Array && eq(e.prev, prev.hash))) fail(`the item history was altered: event ${n} (log index ${e.index}) does not link to the event before it`);
          if (prev && e.index <= prev.index) fail(`the item history is out of log order at event ${n}`);
          events.push(e); prev = e;
        }
        info.history = events.slice(0, -1);
        return `${data.history.length} earlier events link one to the next and into the certified event's chain head ${info.head ? info.head.slice(0, 16) + "..." : ""}`;
      });
    }
    if (data.reveals && data.reveals.size && (chained || !data.history)) {
      await step("reveals", async () => {
        const events = (info.history || []).concat([leaf]);
        let n = 0;
        const one = async (idx, name, c, r) => { // r = [salt, value]; c = the leaf's commitment
          if (!(c instanceof Uint8Array) || c.length !== 32) fail(`event ${idx}: its leaf does not seal '${name}'`);
          if (!Array.isArray(r) || r.length !== 2 || !(r[0] instanceof Uint8Array) || r[0].length !== 16) fail(`event ${idx}: the reveal of '${name}' is not [16-byte salt, value]`);
          if (!eq(await sha256(encode([r[0], name, r[1]])), c)) fail(`event ${idx}: the revealed '${name}' does not match its commitment (a forged or edited reveal)`);
          n += 1; return r[1];
        };
        for (const [idx, r] of data.reveals) {
          const e = events.find((x) => x.index === idx);
          if (!e) fail(`a reveal is given for log index ${idx}, which is not an event of this certificate's history`);
          const s = e.data.get("sealed");
          if (!(s instanceof Map) || !(r instanceof Map)) fail(`event ${idx}: a reveal is given but its leaf seals nothing`);
          e.revealed = new Map();
          for (const [k, rv] of r) {
            const c = s.get(k);
            if (rv instanceof Map && c instanceof Map) { for (const [f, rf] of rv) e.revealed.set(`${k}.${f}`, await one(idx, f, c.get(f), rf)); }
            else e.revealed.set(k, await one(idx, k, c, rv));
          }
        }
        if (leaf.revealed) { info.operator = leaf.revealed.get("op"); info.location = leaf.revealed.get("loc"); }
        return `${n} revealed values (who, where, passport) match the commitments in their events' leaves (SHA-256, WebCrypto)`;
      });
    }
    return { checks, info };
  }

  // --- the page --------------------------------------------------------------------------------
  function el(tag, text, cls) { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; }
  function when(t) { return isUint(t) ? new Date(t * 1000).toISOString().replace("T", " ").replace(".000Z", " UTC") : ""; }
  // who, where, prices (glint.ledger.sealed.WHO_WHERE): shown only when revealed and checked
  const PRIVATE = ["op", "loc", "note", "by", "to", "owner", "custodian", "seller", "channel", "price", "currency", "cond", "reason", "scan", "ref", "sealed"];
  const shown = (v) => (v instanceof Map ? "{...}" : v instanceof Uint8Array ? hex(v).slice(0, 12) : num(v));
  function summary(e) {
    const parts = [];
    for (const [k, v] of e.data) if (!PRIVATE.includes(String(k))) parts.push(`${k}=${shown(v)}`);
    if (e.revealed) for (const [k, v] of e.revealed) parts.push(`${k}=${shown(v)}`);
    return parts.join(" ");
  }

  function show(result, source) {
    const { checks, info } = result;
    const ok = checks.length > 0 && checks.every((c) => c.ok !== false);
    const banner = document.getElementById("verdict");
    banner.textContent = ok ? "Certificate verified" : "Certificate NOT verified";
    banner.className = "verdict " + (ok ? "ok" : "bad");
    const why = document.getElementById("why");
    const failed = checks.find((c) => c.ok === false);
    why.textContent = failed ? `${failed.name}: ${failed.detail}` : `Every check passed in this browser (${source}).`;
    const list = document.getElementById("checks"); list.textContent = "";
    for (const c of checks) {
      const li = el("li", "", c.ok === true ? "pass" : c.ok === false ? "fail" : "skip");
      li.dataset.check = c.name; li.dataset.ok = String(c.ok);
      li.append(el("strong", (c.ok === true ? "\u2713 " : c.ok === false ? "\u2717 " : "\u2013 ") + c.name), el("span", " " + c.detail));
      list.append(li);
    }
    const facts = document.getElementById("facts"); facts.textContent = "";
    facts.className = ok ? "" : "unverified";
    if (!ok && info.item !== undefined) facts.append(el("caption", "What the certificate claims (not verified):"));
    const rows = [["Item", info.item], ["Result", info.result === undefined ? "" : String(info.result).toUpperCase()],
      ["False-accept probability", info.fap === null || info.fap === undefined ? "" : Number(info.fap).toPrecision(3)],
      ["Verified at", when(info.time)], ["Certificate issued", when(info.issued)], ["Certificate id", info.id],
      ["Log", info.log ? `${info.log}, event ${info.index} of ${info.size}` : ""], ["Scan digest", info.scan], ["Device", info.device],
      ["Operator", info.operator === undefined ? "" : shown(info.operator)], ["Location", info.location === undefined ? "" : shown(info.location)]];
    for (const [k, v] of rows) if (v !== undefined && v !== null && v !== "") { const tr = el("tr"); tr.append(el("th", k), el("td", v)); facts.append(tr); }
    const hist = document.getElementById("history"); hist.textContent = "";
    if (info.history) {
      for (const e of info.history) { const tr = el("tr"); tr.append(el("td", e.index), el("td", when(e.time)), el("td", e.kind), el("td", summary(e))); hist.append(tr); }
    }
    root.dataset.verdict = ok ? "verified" : "failed";
    if (failed) root.dataset.failedCheck = failed.name; else delete root.dataset.failedCheck;
  }

  function readData() {
    const node = document.getElementById("glint-data");
    const d = JSON.parse(node.textContent);
    return { id: d.id || null, cert: d.cert ? b64dec(d.cert) : null, history: Array.isArray(d.history) ? d.history.map(b64dec) : null, keys: d.keys };
  }

  async function run(data, source) {
    let result;
    try { result = await check(data); }
    catch (e) { result = { checks: [{ name: "page", ok: false, detail: "internal error: " + e }], info: {} }; }
    show(result, source);
  }

  async function fromFile(file, keys) {
    const u8 = new Uint8Array(await file.arrayBuffer());
    let data = { id: null, cert: u8, history: null, keys };
    if (u8[0] !== 0xd2) { // a bundle: {"glint-bundle": 1, "cert": bstr, "hist": [bstr...]} (2: + "rev": {index: reveal})
      try {
        const b = strict(u8, "the bundle");
        if (!(b instanceof Map) || ![1, 2].includes(b.get("glint-bundle")) || !(b.get("cert") instanceof Uint8Array) || !Array.isArray(b.get("hist")) || !b.get("hist").every((h) => h instanceof Uint8Array)) fail("not a glint bundle");
        const keysOf = Array.from(b.keys()).map(String).sort().join();
        const v2 = b.get("glint-bundle") === 2;
        if (keysOf !== (v2 ? ["cert", "glint-bundle", "hist", "rev"] : ["cert", "glint-bundle", "hist"]).join()) fail("the bundle has missing or unknown fields");
        if (v2 && (!(b.get("rev") instanceof Map) || !Array.from(b.get("rev")).every(([k, v]) => isUint(k) && v instanceof Map))) fail("the bundle's reveals are not a map of log index to reveal");
        data = { id: null, cert: b.get("cert"), history: b.get("hist"), reveals: v2 ? b.get("rev") : null, keys };
      } catch (e) { show({ checks: [{ name: "file", ok: false, detail: `${file.name}: neither a certificate nor a bundle (${e.message})` }], info: {} }, file.name); return; }
    }
    await run(data, `file ${file.name}`);
  }

  window.addEventListener("DOMContentLoaded", () => {
    let data;
    try { data = readData(); }
    catch (e) { show({ checks: [{ name: "page data", ok: false, detail: "the page's data is damaged: " + e.message }], info: {} }, "this page"); return; }
    const input = document.getElementById("file");
    if (input) input.addEventListener("change", () => { if (input.files && input.files[0]) { delete root.dataset.verdict; fromFile(input.files[0], data.keys); } });
    if (data.cert) run(data, location.protocol === "file:" ? "a saved copy of this page, offline" : "this page");
    else root.dataset.verdict = "none";
  });
  window.glintVerify = { decode, encode, check, rootFromInclusion }; // for scripts and tests
})();
