// Password reset in a real browser: "Forgot password?" on the sign-in page,
// the mail delivered to a real SMTP server (tests/smtp_sink.py, aiosmtpd),
// the link's page, and signing in with the new password. Screenshots and
// axe-core on /forgot, /reset and /account/email (an address confirmation).
import { test, expect } from '@playwright/test';
import { AxeBuilder } from '@axe-core/playwright';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import net from 'node:net';
import { startDemo, Session } from './server.mjs';

const here = new URL('.', import.meta.url).pathname;
const shots = resolve(here, '..', process.env.CARGO_TARGET_DIR || 'target', 'screenshots');
mkdirSync(shots, { recursive: true });
const NEW_PASSWORD = 'amber-orchard-compass-31';

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

/** The SMTP sink the Rust tests use, writing each message as JSON into a temp directory. */
async function startSink() {
  const python = process.env.WAYPOST_TEST_SMTP_PYTHON || 'python3';
  const dir = mkdtempSync(join(tmpdir(), 'waypost-mail-'));
  const port = await freePort();
  const child = spawn(python, [resolve(here, '../crates/waypost-server/tests/smtp_sink.py'), String(port), dir],
    { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((ok, fail) => {
    child.stdout.on('data', (d) => { if (String(d).includes('ready')) ok(); });
    child.on('exit', (code) => fail(new Error(`the SMTP sink exited (${code}); is aiosmtpd installed?`)));
  });
  return {
    port,
    async waitForMail(subject) {
      const deadline = Date.now() + 20_000;
      for (;;) {
        const mails = readdirSync(dir).filter((n) => n.endsWith('.json')).sort()
          .map((n) => JSON.parse(readFileSync(join(dir, n), 'utf8')))
          .filter((m) => m.subject.includes(subject));
        if (mails.length) return mails[mails.length - 1];
        if (Date.now() > deadline) throw new Error('no mail arrived');
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    stop() { child.kill(); rmSync(dir, { recursive: true, force: true }); },
  };
}

async function check(p, name) {
  for (const [label, size] of [['desktop', { width: 1280, height: 900 }], ['phone', { width: 390, height: 844 }]]) {
    await p.setViewportSize(size);
    await p.screenshot({ path: `${shots}/${name}-${label}.png`, fullPage: true });
    const result = await new AxeBuilder({ page: p }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']).analyze();
    const serious = result.violations
      .filter((v) => ['serious', 'critical'].includes(v.impact))
      .map((v) => `${v.id} (${v.impact}): ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    expect(serious, `axe on ${name} at ${label} width`).toEqual([]);
  }
  await p.setViewportSize({ width: 1280, height: 900 });
}

test('a forgotten password is reset through the mailed link', async ({ page }) => {
  const sink = await startSink();
  const demo = await startDemo({
    WAYPOST_SMTP_URL: `smtp://127.0.0.1:${sink.port}`,
    WAYPOST_MAIL_FROM: 'Waypost <noreply@waypost.test>',
    WAYPOST_MAIL_POLL_MS: '100',
  });
  try {
    await page.goto(`${demo.base}/login`);
    await page.getByRole('link', { name: 'Forgot password?' }).click();
    await expect(page).toHaveURL(/\/forgot$/);
    await check(page, 'forgot');
    await page.getByLabel('Email').fill(demo.email);
    await page.getByRole('button', { name: 'Send a reset link' }).click();
    await expect(page.getByRole('status')).toContainText('on its way');

    const mail = await sink.waitForMail('Reset your');
    expect(mail.rcpt_tos).toEqual([demo.email]);
    const link = mail.text.split(/\s+/).find((w) => w.startsWith('http'));
    expect(link).toContain('/reset?token=');
    await page.goto(link.replace(/^https?:\/\/[^/]+/, demo.base));
    await expect(page.getByRole('heading', { name: 'Choose a new password' })).toBeVisible();
    await check(page, 'reset');
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByLabel('The same password again').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Set password' }).click();
    await expect(page).toHaveURL(/\/login\?reset=1$/);
    await expect(page.getByRole('status')).toContainText('Your password is changed');

    await page.getByLabel('Email').fill(demo.email);
    await page.getByLabel('Password').fill(NEW_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page).toHaveURL(/\/inbox/);

    // The address is confirmed through its mailed link's page.
    const api = new Session(demo.base);
    await api.call('POST', '/v1/auth/login', { email: demo.email, password: NEW_PASSWORD });
    await api.call('POST', '/v1/account/email/verification');
    const confirm = await sink.waitForMail('Confirm your address');
    const confirmLink = confirm.text.split(/\s+/).find((w) => w.startsWith('http'));
    await page.goto(confirmLink.replace(/^https?:\/\/[^/]+/, demo.base));
    await expect(page.getByRole('heading', { name: 'Confirm your address' })).toBeVisible();
    await check(page, 'email-link');
    await page.getByRole('button', { name: 'Confirm' }).click();
    await expect(page.getByRole('status')).toContainText('your address is confirmed');
  } finally {
    demo.stop();
    sink.stop();
  }
});
