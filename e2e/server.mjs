// Starts `waypost serve --demo` on free ports in a fresh data directory and
// reads what it prints: the dashboard URL, the owner's password, the API key
// and the sandbox's control route.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createHmac } from 'node:crypto';
import net from 'node:net';

const here = new URL('.', import.meta.url).pathname;

function freePort() {
  return new Promise((ok, fail) => {
    const s = net.createServer();
    s.unref();
    s.on('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
}

/** The `waypost` binary under test. */
export function waypostBin() {
  return process.env.WAYPOST_BIN
    || resolve(here, '..', process.env.CARGO_TARGET_DIR || 'target', 'debug', 'waypost');
}

export async function startDemo(env = {}) {
  const bin = waypostBin();
  const dir = mkdtempSync(join(tmpdir(), 'waypost-e2e-'));
  const port = await freePort();
  const sandboxPort = await freePort();
  const child = spawn(bin, ['serve', '--demo', '--listen', `127.0.0.1:${port}`,
    '--data-dir', dir, '--sandbox-listen', `127.0.0.1:${sandboxPort}`], {
    env: { ...process.env, RUST_LOG: 'warn', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', () => {});
  const deadline = Date.now() + 60_000;
  while (!/Dashboard: (\S+)\/ \(sign in as (\S+) \/ (\S+);/.test(out) || !out.includes('_sandbox/inbound')) {
    if (child.exitCode !== null) throw new Error(`waypost exited early:\n${out}`);
    if (Date.now() > deadline) throw new Error(`waypost did not start:\n${out}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const [, base, email, password] = out.match(/Dashboard: (\S+)\/ \(sign in as (\S+) \/ (\S+);/);
  const key = out.match(/API key \(new on every start\): (\S+)/)[1];
  const control = out.match(/authorization: Bearer (\S+?)'/)[1];
  const sandbox = out.match(/curl -s -X POST (\S+)\/_sandbox\/inbound/)[1];
  const channel = out.match(/"channel_id":"(ch_[^"]+)"/)[1];
  // Wait for the HTTP listener.
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    base, email, password, key, control, sandbox, channel, dir,
    stop() {
      child.kill('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A customer writes to the demo number through the sandbox. */
export async function customerWrites(demo, from, body) {
  const res = await fetch(`${demo.sandbox}/_sandbox/inbound`, {
    method: 'POST',
    headers: { authorization: `Bearer ${demo.control}`, 'content-type': 'application/json' },
    body: JSON.stringify({ from, message: { type: 'text', text: { body } } }),
  });
  if (!res.ok) throw new Error(`sandbox inbound: ${res.status} ${await res.text()}`);
}

function base32(s) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const c of s.replace(/=+$/, '').toUpperCase()) {
    bits += alphabet.indexOf(c).toString(2).padStart(5, '0');
  }
  const bytes = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) bytes.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(bytes);
}

/** RFC 6238 codes (SHA-1, 30 s, 6 digits); each step is used once, as the server allows. */
export class Authenticator {
  constructor(otpauthUri) {
    this.secret = base32(new URL(otpauthUri).searchParams.get('secret'));
    this.lastStep = -1;
  }

  async code() {
    let step = Math.floor(Date.now() / 30_000);
    while (step <= this.lastStep) {
      await new Promise((r) => setTimeout(r, 500));
      step = Math.floor(Date.now() / 30_000);
    }
    this.lastStep = step;
    const msg = Buffer.alloc(8);
    msg.writeBigUInt64BE(BigInt(step));
    const h = createHmac('sha1', this.secret).update(msg).digest();
    const o = h[h.length - 1] & 0xf;
    const n = ((h[o] & 0x7f) << 24) | (h[o + 1] << 16) | (h[o + 2] << 8) | h[o + 3];
    return String(n % 1_000_000).padStart(6, '0');
  }
}

/** A JSON API client holding a session cookie. */
export class Session {
  constructor(base) {
    this.base = base;
    this.cookie = '';
  }

  async call(method, path, body) {
    const res = await fetch(`${this.base}${path}`, {
      method,
      headers: {
        'content-type': 'application/json',
        origin: this.base,
        ...(this.cookie ? { cookie: this.cookie } : {}),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const set = res.headers.get('set-cookie');
    if (set && set.startsWith('waypost_session=')) this.cookie = set.split(';')[0];
    const text = await res.text();
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
    return text ? JSON.parse(text) : null;
  }
}
