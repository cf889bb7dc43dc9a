// Runs MicroPython (WebAssembly port) as a long-lived worker for the host.
//
// usage: node runner.mjs MICROPYTHON_MJS [--heap BYTES] [--mount SRC=DEST]...
//
// Each --mount copies a host file or directory into the MicroPython filesystem
// (an in-memory FS) before the first request. Requests arrive on stdin as one JSON
// object per line: {"code": "..."}; each answer is one JSON line on stdout:
// {"ok": true, "out": "<captured stdout, latin-1>"} or
// {"ok": false, "type": "ValueError", "error": "<traceback>", "out": "..."}.
import fs from "node:fs";
import path from "node:path";
import readline from "node:readline";
import { pathToFileURL } from "node:url";

const args = process.argv.slice(2);
const mjs = args.shift();
let heap = 8 * 1024 * 1024;
const mounts = [];
while (args.length) {
  const a = args.shift();
  if (a === "--heap") heap = parseInt(args.shift(), 10);
  else if (a === "--mount") mounts.push(args.shift());
  else { process.stderr.write(`runner: unknown argument ${a}\n`); process.exit(2); }
}

const { loadMicroPython } = await import(pathToFileURL(mjs).href);
let chunks = [];
const mp = await loadMicroPython({
  heapsize: heap,
  linebuffer: false,
  stdout: (b) => chunks.push(Buffer.from(b)),
  stderr: (b) => chunks.push(Buffer.from(b)),
});

function mkdirp(p) {
  const parts = p.split("/").filter(Boolean);
  let cur = "";
  for (const part of parts) {
    cur += "/" + part;
    try { mp.FS.mkdir(cur); } catch (e) { /* exists */ }
  }
}

function copyIn(src, dest) {
  const st = fs.statSync(src);
  if (st.isDirectory()) {
    mkdirp(dest);
    for (const name of fs.readdirSync(src)) {
      if (name === "__pycache__" || name.startsWith(".")) continue;
      copyIn(path.join(src, name), dest + "/" + name);
    }
  } else {
    mkdirp(path.posix.dirname(dest));
    mp.FS.writeFile(dest, fs.readFileSync(src));
  }
}

for (const m of mounts) {
  const i = m.indexOf("=");
  copyIn(m.slice(0, i), m.slice(i + 1));
}

const rl = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of rl) {
  if (!line.trim()) continue;
  const req = JSON.parse(line);
  chunks = [];
  let reply;
  try {
    mp.runPython(req.code);
    reply = { ok: true };
  } catch (e) {
    if (e.name !== "PythonError") throw e;
    reply = { ok: false, type: e.type, error: e.message };
  }
  reply.out = Buffer.concat(chunks).toString("latin1");
  process.stdout.write(JSON.stringify(reply) + "\n");
}
