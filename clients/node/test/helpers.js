'use strict';
// Test helpers: a real ncserver (built from this repository by
// scripts/test.js, path in $NCSERVER) on a config of the test's own, in a
// short temporary socket directory.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Agent } = require('..');

const REPO = path.join(__dirname, '..', '..', '..');

function bin(name) {
  const p = process.env[name.toUpperCase()];
  if (!p) throw new Error(`$${name.toUpperCase()} is not set: run the suite with "npm test" (scripts/test.js builds ${name})`);
  return p;
}

/** A fresh short directory (Unix socket paths are limited to ~104 bytes). */
function shortDir(t) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ncn-'));
  t?.after(() => fs.rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * Starts ncserver on config (an object; socketdir is set here) and stops
 * it after the test. Returns { dir, stop(), start() } where start() runs it
 * again on the same sockets.
 */
async function startServer(t, config = {}) {
  const dir = config.socketdir ?? shortDir(t);
  const cfg = { channels: { A: { propagatetochannels: '.*' }, B: {} }, ...config, socketdir: dir };
  const file = path.join(dir, 'ncserver.json');
  fs.writeFileSync(file, JSON.stringify(cfg));
  const channels = new Set(['control', ...Object.keys(cfg.channels)]);
  const srv = { dir, proc: null, output: '' };
  srv.start = async () => {
    const p = spawn(bin('ncserver'), [file], { stdio: ['ignore', 'pipe', 'pipe'] });
    srv.proc = p;
    let out = '';
    await new Promise((resolve, reject) => {
      const seen = new Set();
      const onData = (b) => {
        out += b;
        srv.output += b;
        // "channel listening" channel=A (slog), or "channel A  listening on".
        for (const m of out.matchAll(/channel listening"? channel=(\S+)|channel (\S+)\s+listening on/g)) seen.add(m[1] ?? m[2]);
        if ([...channels].every((c) => seen.has(c))) resolve();
      };
      p.stdout.on('data', onData);
      p.stderr.on('data', onData);
      p.once('exit', (code) => reject(new Error(`ncserver exited with ${code} before listening:\n${out}`)));
      setTimeout(() => reject(new Error('ncserver not listening after 10 s:\n' + out)), 10000).unref();
    });
    p.removeAllListeners('exit');
  };
  srv.stop = async (signal = 'SIGTERM') => {
    const p = srv.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    await new Promise((resolve) => {
      p.once('exit', resolve);
      p.kill(signal);
    });
  };
  await srv.start();
  t.after(() => srv.stop('SIGKILL'));
  return srv;
}

/** Connects an agent to channel of srv, closed after the test. */
async function connect(t, srv, channel, opts = {}) {
  const a = new Agent({ socketDir: srv.dir, minReconnectWait: 5, maxReconnectWait: 50, ...opts });
  await a.connect(channel);
  t.after(() => a.close().catch(() => {}));
  return a;
}

/** A listener that records messages; wait(n) resolves once n arrived. */
function recorder(agent, pattern) {
  const r = { msgs: [], waiters: [] };
  r.handle = (m) => {
    r.msgs.push(m);
    r.waiters = r.waiters.filter((w) => {
      if (r.msgs.length >= w.n) {
        w.resolve(r.msgs);
        return false;
      }
      return true;
    });
  };
  r.wait = (n, ms = 20000) =>
    r.msgs.length >= n
      ? Promise.resolve(r.msgs)
      : new Promise((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`got ${r.msgs.length} messages, want ${n}`)), ms);
          r.waiters.push({ n, resolve: (m) => (clearTimeout(timer), resolve(m)) });
        });
  if (agent) agent.on(pattern, r.handle);
  return r;
}

/** Listens with a recorder and flushes, so the server has the listener. */
async function listen(agent, pattern) {
  const r = recorder(agent, pattern);
  await agent.flush();
  return r;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls cond every 5 ms until it is true, or fails after ms. */
async function until(cond, what, ms = 10000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(5);
  }
}

module.exports = { REPO, bin, shortDir, startServer, connect, recorder, listen, sleep, until };
