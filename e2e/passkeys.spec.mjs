// Passkeys in a real browser: Chromium's virtual authenticator (a platform
// authenticator with user verification, storing discoverable credentials)
// stands in for a phone or laptop. The owner adds a passkey on Security →
// Passkeys, signs out and back in with it (no email, no password), uses it as
// the second step after the password, renames it and removes it behind
// step-up (password and passkey); then syncs the templates with WhatsApp
// from the templates page. Every page is screenshotted at desktop and phone
// widths and checked with axe-core.
import { test, expect } from '@playwright/test';
import { AxeBuilder } from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { startDemo } from './server.mjs';

const shots = resolve(new URL('.', import.meta.url).pathname, '..', process.env.CARGO_TARGET_DIR || 'target', 'screenshots');
mkdirSync(shots, { recursive: true });

const STEP_UP_SECS = 15;
let demo;
// WebAuthn refuses IP addresses: the browser uses the name the server's
// relying party defaults to.
let base;
let context;
let page;
let cdp;
let authenticatorId;

async function check(p, name) {
  await p.waitForLoadState('networkidle').catch(() => {});
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

async function credentials() {
  return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
}

async function signOut() {
  await page.getByRole('button', { name: 'Sign out' }).click();
  await expect(page).toHaveURL(/\/login$/);
}

test.describe.serial('passkeys', () => {
  test.beforeAll(async ({ browser }) => {
    demo = await startDemo({ WAYPOST_STEP_UP_WINDOW_SECS: String(STEP_UP_SECS) });
    base = demo.base.replace('//127.0.0.1:', '//localhost:');
    context = await browser.newContext();
    page = await context.newPage();
    page.on('dialog', (d) => d.accept());
    cdp = await context.newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    ({ authenticatorId } = await cdp.send('WebAuthn.addVirtualAuthenticator', {
      options: {
        protocol: 'ctap2',
        transport: 'internal',
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    }));
  });

  test.afterAll(async () => {
    await context?.close();
    demo?.stop();
  });

  test('a passkey is added on Security → Passkeys', async () => {
    await page.goto(`${base}/login`);
    await page.getByLabel('Email').fill(demo.email);
    await page.getByLabel('Password').fill(demo.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page).toHaveURL(/\/inbox/);
    await page.getByRole('link', { name: 'Security' }).click();
    await page.getByRole('link', { name: 'Passkeys' }).click();
    await expect(page).toHaveURL(/\/security\/passkeys$/);
    await expect(page.getByText('No passkeys yet')).toBeVisible();
    await check(page, 'passkeys-empty');

    await page.getByLabel('Name').fill('This laptop');
    await page.getByRole('button', { name: 'Add a passkey' }).click();
    await expect(page.getByRole('status').filter({ hasText: 'is added' })).toBeVisible();
    await expect(page.getByRole('cell', { name: 'This laptop', exact: true })).toBeVisible();
    const stored = await credentials();
    expect(stored).toHaveLength(1);
    expect(stored[0].isResidentCredential, 'a discoverable credential').toBe(true);
    await check(page, 'passkeys');
  });

  test('signing out and back in with the passkey alone', async () => {
    await signOut();
    await check(page, 'sign-in-with-passkey');
    // By keyboard: the button is reachable and activates with Enter.
    await page.getByRole('button', { name: 'Sign in with a passkey' }).focus();
    await page.keyboard.press('Enter');
    await expect(page).toHaveURL(/\/inbox/);
    await page.goto(`${base}/security/passkeys`);
    const row = page.getByRole('row', { name: /This laptop/ });
    await expect(row).not.toContainText('never');
  });

  test('the passkey is the second step after the password', async () => {
    await signOut();
    await page.getByLabel('Email').fill(demo.email);
    await page.getByLabel('Password').fill(demo.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Two-step verification' })).toBeVisible();
    await check(page, 'sign-in-second-step-passkey');
    await page.getByRole('button', { name: 'Use my passkey' }).click();
    await expect(page).toHaveURL(/\/inbox/);
  });

  test('renamed, then removed after confirming the password', async () => {
    await page.goto(`${base}/security/passkeys`);
    const rename = page.locator('summary', { hasText: 'Rename' });
    await rename.focus();
    await page.keyboard.press('Enter');
    const field = page.getByLabel('New name for “This laptop”');
    await field.fill('Work laptop');
    await page.getByRole('button', { name: 'Save name' }).click();
    await expect(page.getByRole('status')).toContainText('now called “Work laptop”');

    // Past the step-up window, removal asks for the password and the passkey first.
    await page.waitForTimeout((STEP_UP_SECS + 1) * 1000);
    await page.getByRole('button', { name: 'Remove the passkey Work laptop' }).click();
    await expect(page).toHaveURL(/\/reauth\?next=/);
    await check(page, 'passkeys-reauth');
    await page.getByLabel('Password').fill(demo.password);
    await page.getByRole('button', { name: 'Confirm with passkey' }).click();
    await expect(page).toHaveURL(/\/security\/passkeys$/);
    await page.getByRole('button', { name: 'Remove the passkey Work laptop' }).click();
    await expect(page.getByRole('status')).toContainText('removed');
    await expect(page.getByText('No passkeys yet')).toBeVisible();
  });

  test('templates are synced with WhatsApp from their page', async () => {
    await page.goto(`${base}/templates`);
    await check(page, 'templates-sync');
    await page.getByRole('button', { name: 'Sync with WhatsApp' }).click();
    await expect(page.locator('#sync-result')).toContainText('Synced with WhatsApp');
    // The address is the list again, so reloading does not sync twice.
    await expect(page).toHaveURL(/\/templates$/);
    await check(page, 'templates-synced');
  });
});
