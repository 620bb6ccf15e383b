// Campaigns in the browser: an owner builds a campaign to a small segment on
// the page (approved template, parameter source, audience), confirms the
// pre-flight, watches the live counters reach `completed` and downloads the
// outcomes as CSV; a second campaign (on a number slowed to one message a
// second) is paused, resumed and cancelled with the page's buttons. Every
// page is screenshotted at desktop and phone widths and checked with axe-core.
import { test, expect } from '@playwright/test';
import { AxeBuilder } from '@axe-core/playwright';
import { mkdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { startDemo, Authenticator, Session } from './server.mjs';

const shots = resolve(new URL('.', import.meta.url).pathname, '..', process.env.CARGO_TARGET_DIR || 'target', 'screenshots');
mkdirSync(shots, { recursive: true });

let demo;
let api;
let authenticator;
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

/** The JSON API with the demo's key. */
async function call(method, path, body, headers = {}) {
  const res = await fetch(`${demo.base}${path}`, {
    method,
    headers: { authorization: `Bearer ${demo.key}`, 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

/** Imports `eligible` contacts with marketing consent and `without` without, tagged `tag`. */
async function importContacts(tag, first, eligible, without) {
  let csv = 'phone,name,tags,consent_marketing,consent_source,consent_captured_at,consent_text\n';
  for (let i = 0; i < eligible + without; i += 1) {
    const consent = i < eligible ? 'yes,web form,2026-11-01T10:00:00Z,Send me offers' : ',,,';
    csv += `+49151${String(first + i).padStart(8, '0')},Person ${first + i},${tag},${consent}\n`;
  }
  await call('POST', '/v1/contacts/imports', csv, { 'content-type': 'text/csv', 'idempotency-key': `e2e-${tag}` });
}

test.describe.serial('campaigns', () => {
  test.beforeAll(async ({ browser }) => {
    // A slow number that keeps at most two of a campaign's messages waiting:
    // a campaign of 30 runs for half a minute, long enough to press its buttons.
    demo = await startDemo({ WAYPOST_CAMPAIGN_WINDOW: '2' });
    await call('PATCH', `/v1/channels/${demo.channel}`, { throughput_mps: 1 });
    // The demo workspace asks owners for a second factor: enrol one.
    const owner = new Session(demo.base);
    await owner.call('POST', '/v1/auth/login', { email: demo.email, password: demo.password });
    const enrolment = await owner.call('POST', '/v1/auth/mfa/totp');
    authenticator = new Authenticator(enrolment.otpauth_uri);
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
  });

  test('the empty list says what to do', async () => {
    await page.getByRole('link', { name: 'Campaigns' }).click();
    await expect(page).toHaveURL(/\/campaigns$/);
    await expect(page.getByText('No campaigns yet')).toBeVisible();
    await check(page, 'campaigns-empty');
  });

  test('a campaign to a small segment is built on the page, runs and completes', async () => {
    await call('POST', '/v1/templates', {
      name: 'spring_sale', language: 'en_US', category: 'marketing',
      components: [{ type: 'BODY', text: 'Hi {{1}}, our spring sale starts today.', example: { body_text: [['Ana']] } }],
    });
    await expect.poll(async () => (await call('GET', '/v1/templates')).data
      .find((t) => t.name === 'spring_sale')?.status, { timeout: 30_000 }).toBe('APPROVED');
    await importContacts('spring', 1, 3, 1);
    await call('POST', '/v1/segments', { name: 'Spring list', filter: { tags: ['spring'] } });

    await page.getByRole('link', { name: 'New campaign' }).first().click();
    await page.getByLabel(/^Approved template/).selectOption({ label: 'spring_sale (en_US, marketing)' });
    await page.getByRole('button', { name: 'Use this template' }).click();
    await expect(page.getByText('Hi {{1}}, our spring sale starts today.')).toBeVisible();
    await page.getByLabel(/^Audience/).selectOption({ label: 'Spring list' });
    // The API's own refusal: an empty text parameter.
    await page.getByLabel(/^Name/).fill('Spring sale');
    await page.getByLabel('Value from').selectOption({ label: 'The same text for everyone' });
    await page.getByRole('button', { name: 'Save and check recipients' }).click();
    await expect(page.getByRole('alert')).toContainText('a `text` parameter must be 1 to 1024 characters');
    await page.getByLabel('Value from').selectOption({ label: "The contact's name" });
    await check(page, 'campaign-new');
    await page.getByRole('button', { name: 'Save and check recipients' }).click();

    await expect(page.getByRole('heading', { name: 'Spring sale' })).toBeVisible();
    await expect(page.locator('[data-eligible]')).toHaveText('3');
    await expect(page.locator('[data-skipped="no_consent"]')).toContainText('1 skipped');
    await page.getByText('Sending hours (optional)').click();
    await expect(page.getByLabel(/^Time zone/)).toBeVisible();
    await check(page, 'campaign-draft');
    await page.getByRole('button', { name: 'Start: send to 3 recipients' }).click();
    await expect(page.getByRole('status')).toContainText('Started');
    // The live region refreshes itself until the provider has every message.
    await expect(page.locator('#campaign-live')).toHaveAttribute('data-status', 'completed', { timeout: 60_000 });
    await expect(page.locator('[data-sent]')).toHaveText('3');
    await expect(page.locator('[data-outcome-row="skipped"]')).toHaveCount(1);
    await page.reload();
    await expect(page.locator('tr[data-outcome-row]')).toHaveCount(4);
    await check(page, 'campaign-completed');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('campaign-outcomes.csv');
    const csv = readFileSync(await download.path(), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('seq,contact_id,outcome,skip_reason,error_code,message_id,queued_at');
    expect(csv).toHaveLength(5);
    expect(csv.filter((l) => l.includes(',skipped,no_consent,'))).toHaveLength(1);
  });

  test('another campaign is paused, resumed and cancelled with its buttons', async () => {
    await importContacts('autumn', 100, 30, 0);
    await call('POST', '/v1/segments', { name: 'Autumn list', filter: { tags: ['autumn'] } });
    await page.goto(`${demo.base}/campaigns/new`);
    await page.getByLabel(/^Approved template/).selectOption({ label: 'spring_sale (en_US, marketing)' });
    await page.getByRole('button', { name: 'Use this template' }).click();
    await page.getByLabel(/^Name/).fill('Autumn preview');
    await page.getByLabel(/^Audience/).selectOption({ label: 'Autumn list' });
    await page.getByRole('button', { name: 'Save and check recipients' }).click();
    await page.getByRole('button', { name: 'Start: send to 30 recipients' }).click();
    const live = page.locator('#campaign-live');
    await expect(live).toHaveAttribute('data-status', 'running');
    await expect.poll(async () => Number(await page.locator('[data-sent]').textContent()), { timeout: 30_000 })
      .toBeGreaterThan(0);
    await check(page, 'campaign-running');

    await page.getByRole('button', { name: 'Pause' }).click();
    await expect(page.getByRole('status')).toContainText('Paused');
    await expect(live).toHaveAttribute('data-status', 'paused');
    await expect(page.locator('[data-pause-reason]')).toContainText('A member paused it.');
    await expect(page.getByRole('button', { name: 'Pause' })).toHaveCount(0);
    await check(page, 'campaign-paused');

    await page.getByRole('button', { name: 'Resume' }).click();
    await expect(page.getByRole('status')).toContainText('Resumed');
    await expect(live).toHaveAttribute('data-status', 'running');

    await page.getByRole('button', { name: 'Cancel campaign' }).click();
    await expect(live).toHaveAttribute('data-status', 'cancelled');
    await expect(page.getByRole('button', { name: 'Resume' })).toHaveCount(0);

    await page.goto(`${demo.base}/campaigns`);
    await expect(page.locator('tr', { hasText: 'Spring sale' })).toContainText('completed');
    await expect(page.locator('tr', { hasText: 'Autumn preview' })).toContainText('cancelled');
    await check(page, 'campaigns-list');
  });
});
