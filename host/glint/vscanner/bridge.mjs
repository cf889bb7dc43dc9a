// Virtual scanner bridge: the unchanged glint firmware on the MicroPython WebAssembly port,
// its USB console served on TCP (pyserial socket://, mpremote), its flash a host directory.
//
// usage: node bridge.mjs --mjs MICROPYTHON_MJS --listen HOST:PORT --flash DIR --sim DIR
//                        --image SRC=DEST ... [--heap BYTES]
//
// * Firmware image (--image, e.g. firmware/main.py=/main.py): copied into the device
//   filesystem at every boot, never written back ("flashed" firmware). Without --image the
//   board is blank (MicroPython only): /main.py runs from flash once glint fw deploy put it there.
// * Flash (--flash DIR): the rest of the device filesystem. Loaded at boot; every change
//   the device makes is mirrored at once and durably: a file closed after writing is
//   written to DIR/path.vsx-tmp, fsync'd and renamed; renames, unlinks, mkdir and rmdir
//   are replayed (and the directory fsync'd). Killing this process is a power cut.
// * Sim (--sim DIR): /sim in the device (lens.pgm, frames/), refreshed from DIR whenever
//   the host side rewrites it.
// * Console: in protocol mode bytes go to glintfw.link.host_feed; on an interrupt or
//   MSG_REPL the console becomes the MicroPython REPL (the port's event-driven REPL),
//   with soft reset, machine.reset() and mpremote's raw REPL handled like a real board.
//   Raw-paste (\x05A\x01) is supported with window flow control (see replChar).
// * stdin/stdout: JSON lines with the supervisor (glint.vscanner.server): requests
//   {"cmd": "button"|"status"|"reset"|"ping"}, one reply line each; events {"event": "capture"}
//   (the camera opened /sim/lens.pgm); this process exits when stdin closes.
import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const opt = { heap: 8 * 1024 * 1024, image: [] };
while (args.length) {
  const a = args.shift();
  if (a === "--mjs") opt.mjs = args.shift();
  else if (a === "--listen") opt.listen = args.shift();
  else if (a === "--flash") opt.flash = path.resolve(args.shift());
  else if (a === "--sim") opt.sim = path.resolve(args.shift());
  else if (a === "--image") opt.image.push(args.shift());
  else if (a === "--heap") opt.heap = parseInt(args.shift(), 10);
  else { process.stderr.write(`bridge: unknown argument ${a}\n`); process.exit(2); }
}
// The WebAssembly port's JS glue is process-global: each loadMicroPython() points the shared
// `Module` at the new instance and makes a new FinalizationRegistry whose callback frees a
// PyProxy's slot with Module.ccall("proxy_c_free_obj", ref), i.e. in whatever instance is
// current when V8 collects the proxy. After boot() replaces the interpreter (soft or hard
// reset), the dead firmware interpreter's proxies (every link.feed result) were freed in the
// NEW one: proxy_c_free_obj writes NULL to items[ref] with no bounds check, dropping a live
// slot or, past the end of the fresh interpreter's short list, corrupting its heap (seen as
// mpremote's next exec failing with "rb: no module named 'sys'": a scrambled qstr pool,
// about 1 run in 3, whenever V8 collected right after a reset). So each registry is tied
// to the boot that created it, and finalizers of an earlier boot are dropped: that
// interpreter is gone and has nothing left to free.
let bootGeneration = 0;
{
  const NativeRegistry = globalThis.FinalizationRegistry;
  globalThis.FinalizationRegistry = class extends NativeRegistry {
    constructor(cleanup) {
      const gen = bootGeneration;
      super((held) => { if (gen === bootGeneration) cleanup(held); });
    }
  };
}
const { loadMicroPython } = await import(pathToFileURL(opt.mjs).href);

const TICK_MS = 50;
const PYEXEC_FORCED_EXIT = 0x100;
const EXCLUDE = ["/dev", "/proc", "/tmp", "/home", "/sim"];
const imageDests = opt.image.map((m) => m.slice(m.indexOf("=") + 1));

function log(msg) { process.stderr.write(`bridge: ${msg}\n`); }
function reply(obj) { process.stdout.write(JSON.stringify(obj) + "\n"); }

// ---- durable host-side mirror of the device flash ------------------------------------------

function mirrored(p) {
  if (!p.startsWith("/")) return false;
  for (const x of EXCLUDE.concat(imageDests)) if (p === x || p.startsWith(x + "/")) return false;
  return true;
}
function hostPath(p) { return path.join(opt.flash, p); }
function fsyncDir(d) {
  try { const fd = fs.openSync(d, "r"); try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); } } catch (e) { /* best effort */ }
}
function durableWrite(dest, data) {
  const tmp = dest + ".vsx-tmp";
  const fd = fs.openSync(tmp, "w");
  try { fs.writeSync(fd, data); fs.fsyncSync(fd); } finally { fs.closeSync(fd); }
  fs.renameSync(tmp, dest);
  fsyncDir(path.dirname(dest));
}

let mp = null; // the running interpreter
let muted = false;
let outBuf = [];

function resolve(p) {
  if (typeof p !== "string") return null;
  return path.posix.resolve(mp.FS.cwd(), p);
}

function installHooks(FS) {
  const orig = { close: FS.close, rename: FS.rename, unlink: FS.unlink, mkdir: FS.mkdir, rmdir: FS.rmdir, open: FS.open };
  FS.close = function (stream) {
    const p = stream.path;
    const wrote = (stream.flags & 3) !== 0;
    const r = orig.close.apply(this, arguments);
    if (wrote && p && mirrored(p)) {
      try { durableWrite(hostPath(p), FS.readFile(p)); } catch (e) { log(`mirror ${p}: ${e.message}`); }
    }
    return r;
  };
  FS.rename = function (a, b) {
    const r = orig.rename.apply(this, arguments);
    const pa = resolve(a), pb = resolve(b);
    if (mirrored(pa) && mirrored(pb)) {
      fs.renameSync(hostPath(pa), hostPath(pb));
      fsyncDir(path.dirname(hostPath(pb)));
    } else if (mirrored(pb)) {
      durableWrite(hostPath(pb), FS.readFile(pb));
    }
    return r;
  };
  FS.unlink = function (p) {
    const r = orig.unlink.apply(this, arguments);
    const q = resolve(p);
    if (mirrored(q)) { fs.rmSync(hostPath(q), { force: true }); fsyncDir(path.dirname(hostPath(q))); }
    return r;
  };
  FS.mkdir = function (p) {
    const r = orig.mkdir.apply(this, arguments);
    const q = resolve(p);
    if (mp && mirrored(q)) { fs.mkdirSync(hostPath(q), { recursive: true }); fsyncDir(path.dirname(hostPath(q))); }
    return r;
  };
  FS.rmdir = function (p) {
    const r = orig.rmdir.apply(this, arguments);
    const q = resolve(p);
    if (mirrored(q)) { fs.rmSync(hostPath(q), { recursive: true, force: true }); }
    return r;
  };
  FS.open = function (p) {
    const q = typeof p === "string" ? resolve(p) : null;
    if (q && q.startsWith("/sim/")) syncSim();
    const r = orig.open.apply(this, arguments);
    // a capture (the sim camera opens the lens for reading): the supervisor may put the next placement there
    const fl = arguments[1];
    const reading = fl === undefined || fl === "r" || (typeof fl === "number" && (fl & 3) === 0);
    if (q === "/sim/lens.pgm" && reading && mode === "protocol") reply({ event: "capture" });
    return r;
  };
}

function mkdirp(FS, p) {
  let cur = "";
  for (const part of p.split("/").filter(Boolean)) {
    cur += "/" + part;
    try { FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}
function copyIn(FS, src, dest, skipTmp) {
  const st = fs.statSync(src);
  if (st.isDirectory()) {
    mkdirp(FS, dest);
    for (const name of fs.readdirSync(src)) {
      if (name === "__pycache__" || name.startsWith(".")) continue;
      if (skipTmp && name.endsWith(".vsx-tmp")) continue;
      copyIn(FS, path.join(src, name), (dest === "/" ? "" : dest) + "/" + name, skipTmp);
    }
  } else {
    mkdirp(FS, path.posix.dirname(dest));
    FS.writeFile(dest, fs.readFileSync(src));
  }
}

// ---- /sim: what lies under the lens -----------------------------------------------------------

let simStamp = "";
function simSignature() {
  const parts = [];
  const walk = (d) => {
    let names;
    try { names = fs.readdirSync(d); } catch (e) { return; }
    for (const n of names.sort()) {
      const p = path.join(d, n);
      const st = fs.statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else parts.push(`${p}:${st.size}:${st.mtimeMs}`);
    }
  };
  walk(opt.sim);
  return parts.join("|");
}
function syncSim(force) {
  if (!mp || !opt.sim) return;
  const sig = simSignature();
  if (!force && sig === simStamp) return;
  simStamp = sig;
  const FS = mp.FS;
  const rm = (p) => {
    let st;
    try { st = FS.stat(p); } catch (e) { return; }
    if (FS.isDir(st.mode)) {
      for (const n of FS.readdir(p)) if (n !== "." && n !== "..") rm(p + "/" + n);
      FS.rmdir(p);
    } else FS.unlink(p);
  };
  rm("/sim");
  if (fs.existsSync(opt.sim)) copyIn(FS, opt.sim, "/sim", false);
  else mkdirp(FS, "/sim");
}

// The WebAssembly port raises OSError with Emscripten's errno numbers (ENOENT = 44) while
// its errno module and every real board use the usual ones (ENOENT = 2); mpremote relies on
// the latter. This shim, run at every boot before main.py, translates them like a board would.
const ERRNO_SHIM = `
import builtins, os
_M = {63: 1, 44: 2, 29: 5, 8: 9, 6: 11, 48: 12, 2: 13, 10: 16, 20: 17, 75: 18, 43: 19, 54: 20, 31: 21,
      28: 22, 51: 28, 69: 30, 37: 36, 55: 39}
def _wrap(f):
    def w(*a):
        try:
            return f(*a)
        except OSError as e:
            n = e.args[0] if e.args else None
            if n in _M:
                raise OSError(_M[n])
            raise
    return w
builtins.open = _wrap(builtins.open)
for _n in ("stat", "remove", "unlink", "rename", "mkdir", "rmdir", "listdir", "ilistdir", "chdir", "statvfs"):
    if hasattr(os, _n):
        setattr(os, _n, _wrap(getattr(os, _n)))
del _n, _wrap
`;

// ---- the device ---------------------------------------------------------------------------------

let mode = "off"; // "protocol" | "repl"
let rawRepl = false;
let pendingReset = null; // "hard" | "soft" requested from Python (machine.reset / soft_reset)
let link = null; // glintfw.link proxies

async function boot(runMain) {
  link = null;
  mp = null;
  bootGeneration++; // from here on the old interpreter's proxy finalizers are ignored
  const m = await loadMicroPython({
    heapsize: opt.heap,
    linebuffer: false,
    stdout: (b) => { if (!muted) outBuf.push(Buffer.from(b)); },
    stderr: (b) => { if (!muted) outBuf.push(Buffer.from(b)); },
  });
  const FS = m.FS;
  fs.mkdirSync(opt.flash, { recursive: true });
  copyIn(FS, opt.flash, "/", true);
  for (const spec of opt.image) {
    const i = spec.indexOf("=");
    copyIn(FS, spec.slice(0, i), spec.slice(i + 1), false);
  }
  m.registerJsModule("simhost", {
    entropy: (n) => new Uint8Array(crypto.randomBytes(n)),
    log: (s) => log(`device: ${s}`),
  });
  m.registerJsModule("machine", {
    reset: () => { pendingReset = "hard"; },
    soft_reset: () => { pendingReset = "soft"; },
    freq: () => 240000000,
  });
  mp = m;
  mp.runPython(ERRNO_SHIM);
  installHooks(FS);
  syncSim(true);
  rawRepl = false;
  pendingReset = null;
  if (!runMain) { enterRepl(false); return; }
  // main.py from the firmware image, else from flash (deployed with glint fw deploy / mpremote);
  // neither: a blank board (MicroPython only), the REPL takes the console.
  let mainSrc = null;
  if (imageDests.includes("/main.py")) mainSrc = fs.readFileSync(imageSource("/main.py"), "utf8");
  else { try { mainSrc = FS.readFile("/main.py", { encoding: "utf8" }); } catch (e) { mainSrc = null; } }
  if (mainSrc === null) { enterRepl(false); return; }
  try {
    mp.runPython(mainSrc);
    const l = mp.pyimport("glintfw.link");
    if (!l._hosted) throw new Error("main.py did not start the hosted link");
    link = { feed: l.host_feed, tick: l.host_tick, button: l.host_button, status: l.host_status };
    mode = "protocol";
  } catch (e) {
    if (e.name === "PythonError") outBuf.push(Buffer.from(e.message.replace(/\n/g, "\r\n")));
    else log(`boot: ${e.stack || e}`);
    enterRepl(false); // like a board whose main.py failed: the REPL takes the console
  }
}

function imageSource(dest) {
  for (const spec of opt.image) {
    const i = spec.indexOf("=");
    if (spec.slice(i + 1) === dest) return spec.slice(0, i);
  }
  throw new Error(`no image file for ${dest}`);
}

function enterRepl(silent) {
  mode = "repl";
  rawRepl = false;
  muted = silent;
  mp.replInit();
  muted = false;
}

async function softReboot(stayInRepl) {
  outBuf.push(Buffer.from("MPY: soft reboot\r\n"));
  if (stayInRepl) {
    await boot(false); // raw REPL soft reset: main.py does not run, the REPL stays raw
    muted = true; mp.replInit(); muted = false;
    mp.replProcessChar(0x01);
    rawRepl = true;
  } else {
    await boot(true);
  }
}

let paste = []; // bytes held while checking for the raw-paste request \x05 A \x01
// Raw-paste mode (MicroPython's flow-controlled upload, used by mpremote): the bridge takes
// the code itself with window flow control, then feeds it to the port's raw REPL in-process,
// so a large exec (mpremote fs cp) is not throttled to raw REPL's 256 bytes per 10 ms.
const PASTE_WINDOW = 4096;
let pasting = false;
let pasteCode = [];

async function replChar(c) {
  if (pasting) {
    if (c === 0x04) {
      pasting = false;
      outBuf.push(Buffer.from([0x04])); // acknowledge the end of the data
      const code = pasteCode; pasteCode = [];
      muted = true;
      for (const b of code) mp.replProcessChar(b);
      muted = false;
      const mark = outBuf.length;
      await replCharDirect(0x04); // compile and run as the raw REPL does
      // The raw REPL answers "OK" before the output; raw-paste does not.
      const tail = Buffer.concat(outBuf.splice(mark));
      outBuf.push(tail.subarray(0, 2).toString("latin1") === "OK" ? tail.subarray(2) : tail);
      return;
    }
    pasteCode.push(c);
    if (pasteCode.length % PASTE_WINDOW === 0) outBuf.push(Buffer.from([0x01])); // another window
    return;
  }
  if (rawRepl && (paste.length || c === 0x05)) {
    paste.push(c);
    const want = [0x05, 0x41, 0x01];
    if (paste.every((b, i) => b === want[i])) {
      if (paste.length === 3) {
        paste = [];
        pasting = true;
        pasteCode = [];
        outBuf.push(Buffer.from([0x52, 0x01, PASTE_WINDOW & 0xff, PASTE_WINDOW >> 8]));
      }
      return;
    }
    const held = paste; paste = [];
    for (const b of held) await replCharDirect(b);
    return;
  }
  await replCharDirect(c);
}

async function replCharDirect(c) {
  if (c === 0x01) rawRepl = true;
  else if (c === 0x02) rawRepl = false;
  const r = mp.replProcessChar(c);
  if (pendingReset) {
    const kind = pendingReset; pendingReset = null;
    if (kind === "hard") await boot(true);
    else await softReboot(false);
  } else if (r & PYEXEC_FORCED_EXIT) {
    await softReboot(rawRepl);
  }
}

// ---- the link ---------------------------------------------------------------------------------

let client = null;
let queue = Promise.resolve();

function flush() {
  if (!outBuf.length) return;
  const data = Buffer.concat(outBuf);
  outBuf = [];
  if (client && !client.destroyed) client.write(data);
}

async function onData(chunk) {
  let data = chunk;
  while (data.length) {
    if (mode === "protocol") {
      syncSim();
      let res;
      try {
        res = mp.PyProxy.toJs(link.feed(new Uint8Array(data)));
      } catch (e) {
        log(`host_feed: ${e.message}`);
        outBuf.push(Buffer.from(String(e.message).replace(/\n/g, "\r\n")));
        enterRepl(false);
        return;
      }
      const [out, action, consumed] = res;
      if (out && out.length) outBuf.push(Buffer.from(out));
      data = data.subarray(consumed);
      if (action === 1) { flush(); enterRepl(false); }
      else if (action === 2) { flush(); await softReboot(false); }
    } else {
      for (let i = 0; i < data.length; i++) {
        await replChar(data[i]);
        if (mode === "protocol") { data = data.subarray(i + 1); break; }
        if (i === data.length - 1) data = data.subarray(data.length);
      }
    }
  }
}

function enqueue(fn) {
  queue = queue.then(fn).then(flush, (e) => { log(`error: ${e.stack || e}`); flush(); });
  return queue;
}

await boot(true);

const [host, portStr] = opt.listen.split(/:(?=[^:]*$)/);
const server = net.createServer((sock) => {
  if (client && !client.destroyed) client.destroy();
  client = sock;
  sock.setNoDelay(true);
  sock.on("data", (d) => enqueue(() => onData(d)));
  sock.on("error", () => {});
  sock.on("close", () => { if (client === sock) client = null; });
  enqueue(() => {}); // deliver anything the device printed while nobody listened
});
server.listen(parseInt(portStr, 10), host, () => {
  reply({ event: "listening", host, port: server.address().port });
});

setInterval(() => {
  if (mode === "protocol" && link) enqueue(() => { link.tick(); });
}, TICK_MS).unref();

const rl = readline.createInterface({ input: process.stdin, terminal: false });
rl.on("line", (line) => {
  if (!line.trim()) return;
  let req;
  try { req = JSON.parse(line); } catch (e) { reply({ ok: false, error: "bad JSON" }); return; }
  enqueue(async () => {
    try {
      if (req.cmd === "ping") reply({ ok: true, mode });
      else if (req.cmd === "status") {
        const st = mode === "protocol" ? mp.PyProxy.toJs(link.status()) : {};
        reply({ ok: true, mode, ...st });
      } else if (req.cmd === "button") {
        if (mode !== "protocol") { reply({ ok: false, error: "not in protocol mode" }); return; }
        syncSim();
        const ev = mp.PyProxy.toJs(link.button());
        outBuf.push(Buffer.from(ev));
        reply({ ok: true });
      } else if (req.cmd === "reset") { await boot(true); reply({ ok: true, mode }); }
      else reply({ ok: false, error: `unknown command ${req.cmd}` });
    } catch (e) {
      reply({ ok: false, error: String(e.message || e) });
    }
  });
});
rl.on("close", () => process.exit(0));
