// Audience and operator pages in the browser. An owner imports a small CSV
// file on the import page (counts, rows needing attention, the per-row
// results download), saves a segment from the filter form and sees its live
// count, and deletes one. An operator signs in with an operator token (made
// with `waypost admin operator-token create`), records an incident and sees
// its 72-hour clock, closes it, and reads the backup page after the demo
// server's first scheduled backup. Every page is screenshotted at desktop and
// phone widths and checked with axe-core.
import { test, expect } from '@playwright/test';
import { AxeBuilder } from '@axe-core/playwright';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startDemo, waypostBin, Authenticator, Session } from './server.mjs';

const shots = resolve(new URL('.', import.meta.url).pathname, '..', process.env.CARGO_TARGET_DIR || 'target', 'screenshots');
mkdirSync(shots, { recursive: true });

let demo;
let keys;
let context;
let page;

/** Screenshots at desktop and phone width, and no serious or critical axe finding. */
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

const CSV = [
  'phone,name,tags,consent_marketing,consent_source,consent_captured_at,consent_text',
  '+4915100000001,Ana,spring,yes,web form,2026-11-01T10:00:00Z,Send me offers',
  '+4915100000002,Ben,spring;vip,yes,web form,2026-11-01T10:00:00Z,Send me offers',
  '+4915100000003,Cleo,spring,,,,',
  'not-a-number,Dan,spring,,,,',
  '+4915100000001,Ana again,,,,,',
].join('\n');

test.describe.serial('audiences and operators', () => {
  test.beforeAll(async ({ browser }) => {
    keys = mkdtempSync(join(tmpdir(), 'waypost-e2e-keys-'));
    const out = execFileSync(waypostBin(), ['backup', 'keygen', '--out', join(keys, 'backup.key')]).toString();
    const recipient = out.match(/public key \(set WAYPOST_BACKUP_RECIPIENT to it\): (\S+)/)[1];
    demo = await startDemo({
      WAYPOST_BACKUP_DIR: join(keys, 'backups'),
      WAYPOST_BACKUP_RECIPIENT: recipient,
    });
    // The demo workspace asks owners for a second factor: enrol one.
    const owner = new Session(demo.base);
    await owner.call('POST', '/v1/auth/login', { email: demo.email, password: demo.password });
    const enrolment = await owner.call('POST', '/v1/auth/mfa/totp');
    const authenticator = new Authenticator(enrolment.otpauth_uri);
    await owner.call('POST', '/v1/auth/mfa/totp/confirm', { code: await authenticator.code() });
    context = await browser.newContext({ acceptDownloads: true });
    page = await context.newPage();
    page.on('dialog', (d) => d.accept());
    await page.goto(`${demo.base}/login`);
    await page.getByLabel('Email').fill(demo.email);
    await page.getByLabel('Password').fill(demo.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByLabel(/Code from your authenticator app/).fill(await authenticator.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    await expect(page).toHaveURL(/\/inbox$/);
  });

  test.afterAll(async () => {
    await context?.close();
    demo?.stop();
    if (keys) rmSync(keys, { recursive: true, force: true });
  });

  test('a CSV file is imported on the page, with counts and per-row results', async () => {
    await page.getByRole('link', { name: 'Audiences' }).click();
    await expect(page).toHaveURL(/\/audiences\/segments$/);
    await expect(page.getByText('No segments yet')).toBeVisible();
    await check(page, 'segments-empty');
    await page.getByRole('link', { name: 'Import contacts' }).first().click();
    await expect(page.getByRole('heading', { name: 'Import contacts from a CSV file' })).toBeVisible();
    await check(page, 'import-form');
    const file = join(keys, 'spring.csv');
    writeFileSync(file, `${CSV}\n`);
    await page.getByLabel('CSV file').setInputFiles(file);
    await page.getByRole('button', { name: 'Import' }).click();
    await expect(page).toHaveURL(/\/audiences\/imports\/imp_/);
    await expect(page.locator('[data-import-status]')).toHaveText('completed');
    await expect(page.locator('[data-outcome="created"] dd')).toHaveText('3');
    await expect(page.locator('[data-outcome="invalid"] dd')).toHaveText('1');
    await expect(page.locator('[data-outcome="duplicate"] dd')).toHaveText('1');
    await expect(page.locator('[data-outcome="consent"] dd')).toHaveText('2');
    await expect(page.getByRole('heading', { name: 'Rows that need attention' })).toBeVisible();
    await check(page, 'import-result');
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download per-row results (CSV)' }).click(),
    ]);
    const results = readFileSync(await download.path()).toString().trim().split('\n');
    expect(results[0]).toBe('row,outcome,contact_id,consent,detail');
    expect(results).toHaveLength(6);
    expect(results[4]).toMatch(/^4,invalid_number,/);
  });

  test('a segment is saved from the filter form and shows its count', async () => {
    // The new-campaign page points to these pages instead of the API.
    await page.goto(`${demo.base}/campaigns/new`);
    await expect(page.getByRole('link', { name: 'import your contacts' })).toHaveAttribute('href', '/audiences/imports');
    await page.getByRole('link', { name: 'save a segment' }).click();
    await expect(page).toHaveURL(/\/audiences\/segments$/);
    await page.getByLabel('Name', { exact: true }).fill('Spring, consenting');
    await page.getByLabel(/^Tags/).fill('spring');
    await page.getByLabel('Marketing', { exact: true }).selectOption('opted_in');
    await page.getByRole('button', { name: 'Save segment' }).click();
    await expect(page.getByRole('status')).toHaveText('Saved “Spring, consenting”: 2 contacts, 2 with marketing consent.');
    await page.getByLabel('Name', { exact: true }).fill('Spring');
    await page.getByLabel(/^Tags/).fill('spring');
    await page.getByRole('button', { name: 'Save segment' }).click();
    const row = page.locator('tr[data-segment="Spring"]');
    await expect(row.locator('[data-count]')).toHaveText('3 contacts, 2 with marketing consent');
    await check(page, 'segments');
    await page.getByRole('button', { name: 'Delete segment Spring', exact: true }).click();
    await expect(page.getByRole('status')).toHaveText('Segment deleted.');
    await expect(row).toHaveCount(0);
  });

  test('an owner is no operator: the operator pages ask for an operator token', async () => {
    await page.goto(`${demo.base}/operator/incidents`);
    await expect(page).toHaveURL(/\/operator\/login\?next=/);
    await expect(page.getByRole('heading', { name: 'Operator sign-in' })).toBeVisible();
    await check(page, 'operator-login');
    await page.getByLabel(/Operator token/).fill('wpo_not-a-token');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByRole('alert')).toContainText('not valid');
  });

  test('an operator records an incident, watches its clock and closes it', async () => {
    const token = execFileSync(waypostBin(), ['--data-dir', demo.dir, 'admin', 'operator-token', 'create', '--name', 'on-call'],
      { stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
    expect(token).toMatch(/^wpo_/);
    await page.getByLabel(/Operator token/).fill(token);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page).toHaveURL(/\/operator\/incidents$/);
    await expect(page.getByText('No incidents')).toBeVisible();
    await check(page, 'incidents-empty');

    const detected = new Date(Date.now() - 70 * 3600 * 1000).toISOString().slice(0, 16);
    await page.getByLabel(/Detected at/).fill(detected);
    await page.getByLabel('Severity', { exact: true }).selectOption('high');
    await page.getByLabel(/^Description/).fill('Backup bucket was world-readable for three hours');
    await page.getByRole('button', { name: 'Record incident' }).click();
    await expect(page).toHaveURL(/\/operator\/incidents\/inc_/);
    await expect(page.locator('[data-clock]')).toHaveText(/^(1 h 5\d|2 h 0) min left$/);
    await expect(page.locator('[data-clock]')).toHaveClass(/warn/);
    await check(page, 'incident');

    // A second one, detected four days ago, is overdue and listed first.
    await page.getByRole('link', { name: '← All incidents' }).click();
    const old = new Date(Date.now() - 96 * 3600 * 1000).toISOString().slice(0, 16);
    await page.getByLabel(/Detected at/).fill(old);
    await page.getByLabel(/^Description/).fill('Lost laptop with an operator token');
    await page.getByRole('button', { name: 'Record incident' }).click();
    await page.getByRole('link', { name: 'Incidents', exact: true }).click();
    const clocks = page.locator('tbody [data-clock]');
    await expect(clocks).toHaveCount(2);
    await expect(clocks.first()).toHaveText(/^overdue by 2\d h/);
    await expect(clocks.first()).toHaveClass(/bad/);
    await check(page, 'incidents');

    await page.locator('tbody a').nth(1).click();
    await page.getByLabel('Status', { exact: true }).selectOption('contained');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('status')).toHaveText('Incident updated.');
    await expect(page.locator('[data-status]')).toHaveText('contained');
    await page.getByLabel(/^Resolution/).fill('Bucket made private; access logs show no reads.');
    await page.getByRole('button', { name: 'Close incident' }).click();
    await expect(page.getByRole('status')).toHaveText('Incident closed.');
    await expect(page.locator('[data-clock]')).toHaveText('notified in time');
    await check(page, 'incident-closed');
  });

  test('the backup page shows the newest scheduled backup', async () => {
    await page.getByRole('link', { name: 'Backups' }).click();
    await expect(page).toHaveURL(/\/operator\/backups$/);
    await expect(async () => {
      await page.reload();
      await expect(page.locator('[data-envelope]')).toHaveText('encrypted, envelope readable', { timeout: 1000 });
    }).toPass({ timeout: 30_000 });
    await expect(page.locator('tr[data-backup^="hourly-"]')).toHaveCount(1);
    await check(page, 'backups');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expect(page.getByRole('status')).toHaveText('You are signed out of the operator pages.');
  });
});
