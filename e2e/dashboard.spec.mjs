// The dashboard as its users meet it, in Debian's chromium: an owner signs in
// with password and TOTP, reads a customer's message arriving live, replies
// and watches it reach `read`, sends a template outside the window, creates and
// revokes an API key, revokes a session and erases a contact behind step-up;
// an agent finds no API key page. Every page is screenshotted at desktop and
// phone widths and checked with axe-core.
import { test, expect } from '@playwright/test';
import { AxeBuilder } from '@axe-core/playwright';
import { mkdirSync } from 'node:fs';
import http from 'node:http';
import { resolve } from 'node:path';
import { startDemo, customerWrites, Authenticator, Session } from './server.mjs';

const shots = resolve(new URL('.', import.meta.url).pathname, '..', process.env.CARGO_TARGET_DIR || 'target', 'screenshots');
mkdirSync(shots, { recursive: true });

const CUSTOMER = '4915123456789';
const STEP_UP_SECS = 20;
let demo;
let owner;
let authenticator;
let signedInAt;
let invitationUrl;
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

/** Confirms password and code when a sensitive action asked for a fresh sign-in. */
async function reauthenticate(p) {
  await expect(p).toHaveURL(/\/reauth\?next=/);
  await p.getByLabel('Password').fill(demo.password);
  await p.getByLabel('Authenticator code').fill(await authenticator.code());
  await p.getByRole('button', { name: 'Confirm' }).click();
}

test.describe.serial('dashboard', () => {
  test.beforeAll(async ({ browser }) => {
    demo = await startDemo({
      WAYPOST_STEP_UP_WINDOW_SECS: String(STEP_UP_SECS),
      // The webhook test's receiver listens on this machine over plain HTTP.
      WAYPOST_WEBHOOK_ALLOW_HTTP: 'true',
      WAYPOST_WEBHOOK_ALLOW_PRIVATE_TARGETS: 'true',
    });
    owner = new Session(demo.base);
    await owner.call('POST', '/v1/auth/login', { email: demo.email, password: demo.password });
    const enrolment = await owner.call('POST', '/v1/auth/mfa/totp');
    authenticator = new Authenticator(enrolment.otpauth_uri);
    await owner.call('POST', '/v1/auth/mfa/totp/confirm', { code: await authenticator.code() });
    context = await browser.newContext();
    page = await context.newPage();
    page.on('dialog', (d) => d.accept());
  });

  test.afterAll(async () => {
    await context?.close();
    demo?.stop();
  });

  test('sign in with password and TOTP', async () => {
    await page.goto(`${demo.base}/`);
    await expect(page).toHaveURL(/\/login/);
    await check(page, 'sign-in');
    await page.getByLabel('Email').fill(demo.email);
    await page.getByLabel('Password').fill('not the password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByRole('alert')).toContainText('email or password is wrong');
    await page.getByLabel('Password').fill(demo.password);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByRole('heading', { name: 'Two-step verification' })).toBeVisible();
    await check(page, 'sign-in-second-factor');
    await page.getByLabel(/Code from your authenticator app/).fill(await authenticator.code());
    await page.getByRole('button', { name: 'Verify' }).click();
    signedInAt = Date.now();
    await expect(page).toHaveURL(/\/inbox$/);
    await expect(page.getByText('No conversations here yet')).toBeVisible();
    await check(page, 'inbox-empty');
  });

  test('a customer message appears live in the inbox', async () => {
    await expect(page.locator('[data-live="on"]')).toBeAttached();
    await customerWrites(demo, CUSTOMER, 'Hi, is my order on its way?');
    const row = page.locator('#conversation-list a', { hasText: `+${CUSTOMER}` });
    await expect(row).toBeVisible();
    await expect(row).toContainText('Window open');
    await row.click();
    await expect(page.locator('#thread')).toContainText('Hi, is my order on its way?');
    await check(page, 'inbox-conversation');
  });

  test('a reply reaches read while the page watches', async () => {
    await page.getByLabel(/^Reply/).fill('Yes! It ships today.');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    const reply = page.locator('#thread li.outbound', { hasText: 'Yes! It ships today.' });
    await expect(reply).toBeVisible();
    await expect(reply).toHaveAttribute('data-status', 'read');
    await expect(reply.locator('.status')).toContainText('read');
  });

  test('a template is created on its page and goes out where the window is closed', async () => {
    const api = { authorization: `Bearer ${demo.key}`, 'content-type': 'application/json' };
    await page.goto(`${demo.base}/templates`);
    await page.getByLabel(/^Name/).fill('delivery notice');
    await page.getByLabel(/^Body/).fill('Hello {{1}}, order {{2}} ships today.');
    await page.getByLabel(/^Examples/).fill('Ana, A-1');
    await expect(page.locator('[data-preview]')).toHaveText('Hello Ana, order A-1 ships today.');
    await page.getByRole('button', { name: 'Submit for review' }).click();
    await expect(page.getByRole('alert')).toContainText('`name`');
    await page.getByLabel(/^Name/).fill('delivery_notice');
    await check(page, 'templates');
    await page.getByRole('button', { name: 'Submit for review' }).click();
    await expect(page.getByRole('status')).toContainText('delivery_notice');
    await expect.poll(async () => {
      await page.reload();
      return page.locator('tr[data-template="delivery_notice"] .badge').textContent();
    }).toBe('APPROVED');
    // A customer who never wrote: their conversation starts with this template.
    const first = await fetch(`${demo.base}/v1/messages`, {
      method: 'POST',
      headers: { ...api, 'idempotency-key': 'e2e-first-template' },
      body: JSON.stringify({
        channel_id: demo.channel, to: '+4915100000002', type: 'template',
        template: { name: 'delivery_notice', language: { code: 'en_US' },
          components: [{ type: 'body', parameters: [{ type: 'text', text: 'Bo' }, { type: 'text', text: 'B-7' }] }] },
      }),
    });
    expect(first.status).toBe(202);
    await page.goto(`${demo.base}/inbox`);
    await page.locator('#conversation-list a', { hasText: '+4915100000002' }).click();
    await expect(page.getByText('The 24-hour window is closed')).toBeVisible();
    await page.getByLabel('Template', { exact: true }).selectOption({ label: 'delivery_notice (en_US, utility)' });
    await page.getByLabel(/^Parameter 1/).fill('Bo');
    await page.getByLabel(/^Parameter 2/).fill('B-8');
    await expect(page.locator('[data-preview]')).toHaveText('Hello Bo, order B-8 ships today.');
    await check(page, 'inbox-template');
    await page.getByRole('button', { name: 'Send template' }).click();
    await expect(page.locator('#thread li.outbound')).toHaveCount(2);
    await expect(page.locator('#thread li.outbound').last()).toHaveAttribute('data-status', 'read');
  });

  test('an API key is created once, works, and is revoked', async () => {
    await page.goto(`${demo.base}/developers/keys`);
    await check(page, 'developers-keys');
    const fill = async () => {
      await page.getByLabel('Name').fill('shop backend');
      await page.getByLabel('messages:read').check();
      await page.getByLabel('messages:send').check();
      await page.getByRole('button', { name: 'Create key' }).click();
    };
    await fill();
    if (page.url().includes('/reauth')) {
      await reauthenticate(page);
      await expect(page).toHaveURL(/\/developers\/keys$/);
      await fill();
    }
    const key = (await page.locator('#new-key').textContent()).trim();
    expect(key).toMatch(/^wp_live_/);
    await check(page, 'developers-key-created');
    const auth = { authorization: `Bearer ${key}` };
    expect((await fetch(`${demo.base}/v1/messages`, { headers: auth })).status).toBe(200);
    // Reloading the page that showed the key must not create a second one.
    await expect(page).toHaveURL(/\/developers\/keys$/);
    await page.reload();
    await expect(page.getByText(key)).toHaveCount(0);
    await expect(page.locator('tr[data-key="shop backend"]')).toHaveCount(1);
    await page.getByRole('button', { name: 'Revoke shop backend' }).click();
    await expect(page.locator('tr[data-key="shop backend"]')).toContainText('revoked');
    expect((await fetch(`${demo.base}/v1/messages`, { headers: auth })).status).toBe(401);
  });

  test('a webhook endpoint is added, tested, shows its attempt and is disabled', async () => {
    const got = [];
    const receiver = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => { got.push({ id: req.headers['webhook-id'], body }); res.end('ok'); });
    });
    await new Promise((ok) => receiver.listen(0, '127.0.0.1', ok));
    const url = `http://127.0.0.1:${receiver.address().port}/hook`;
    try {
      await page.goto(`${demo.base}/developers/webhooks`);
      await check(page, 'developers-webhooks');
      await page.getByLabel(/^URL/).fill(url);
      await page.getByLabel(/^Description/).fill('order system');
      await page.getByLabel('webhook.test').check();
      await page.getByRole('button', { name: 'Add endpoint' }).click();
      const secret = (await page.locator('#new-secret').textContent()).trim();
      expect(secret).toMatch(/^whsec_/);
      await check(page, 'developers-webhook-added');
      await expect(page).toHaveURL(/\/developers\/webhooks$/);
      await page.reload();
      await expect(page.getByText(secret)).toHaveCount(0);
      await expect(page.locator(`tr[data-endpoint="${url}"]`)).toHaveCount(1);
      await page.getByRole('link', { name: url }).click();
      await page.getByRole('button', { name: 'Send a test event' }).click();
      await expect(page.getByRole('status').filter({ hasText: 'queued' })).toBeVisible();
      await expect.poll(() => got.length, { timeout: 15_000 }).toBeGreaterThan(0);
      await expect.poll(async () => {
        await page.reload();
        return page.locator(`tr[data-attempt="${got[0].id}"]`).count();
      }, { timeout: 15_000 }).toBe(1);
      await check(page, 'developers-webhook-endpoint');
      await page.getByLabel('Enabled').uncheck();
      await page.getByRole('button', { name: 'Save' }).click();
      await expect(page.getByText('Endpoint saved.')).toBeVisible();
      await page.goto(`${demo.base}/developers/webhooks`);
      await expect(page.locator(`tr[data-endpoint="${url}"]`)).toContainText('disabled');
    } finally {
      receiver.close();
    }
  });

  test('the demo channel is checked and renamed on the channels page', async () => {
    await page.goto(`${demo.base}/channels`);
    await check(page, 'channels');
    await page.locator(`a[href="/channels/${demo.channel}"]`).click();
    await expect(page.locator('#inbound-url')).toContainText(`/webhooks/whatsapp/${demo.channel}`);
    await page.getByRole('button', { name: 'Check the connection' }).click();
    await expect(page.locator('#check-result')).toContainText('Connected.');
    await check(page, 'channel');
    await page.getByLabel('Name', { exact: true }).fill('Support line');
    await page.getByRole('button', { name: 'Save' }).click();
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Support line');
    await expect(page.getByRole('status').filter({ hasText: 'Channel saved.' })).toBeVisible();
  });

  test('another session is revoked from the security page', async () => {
    const other = new Session(demo.base);
    await other.call('POST', '/v1/auth/login', { email: demo.email, password: demo.password, totp_code: await authenticator.code() });
    await page.goto(`${demo.base}/security/mfa`);
    await expect(page.getByText('Sign-in asks for a code from your app')).toBeVisible();
    await check(page, 'security-mfa');
    await page.goto(`${demo.base}/security/sessions`);
    await check(page, 'security-sessions');
    const rows = page.locator('tr[data-session]');
    await expect(rows).toHaveCount(3);
    const others = page.locator('tr[data-session]:not(:has(.badge.ok))');
    const before = await others.count();
    await others.last().getByRole('button', { name: /Revoke/ }).click();
    await expect(page.locator('tr[data-session]:not(:has(.badge.ok))')).toHaveCount(before - 1);
    const stillIn = await Promise.all([owner, other].map((s) => s.call('GET', '/v1/auth/me').then(() => true, () => false)));
    expect(stillIn.filter((x) => x)).toHaveLength(1);
  });

  test('erasing a contact asks for the password again', async () => {
    const wait = signedInAt + (STEP_UP_SECS + 1) * 1000 - Date.now();
    if (wait > 0) await page.waitForTimeout(wait);
    await page.goto(`${demo.base}/contacts`);
    await check(page, 'contacts');
    await page.getByRole('search').getByLabel(/Search/).fill(`+${CUSTOMER}`);
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('link', { name: 'Unnamed' }).click();
    const contactUrl = page.url();
    await check(page, 'contact');
    await page.getByLabel('Type ERASE to confirm').fill('ERASE');
    await page.getByRole('button', { name: 'Erase contact' }).click();
    await expect(page).toHaveURL(/\/reauth\?next=/);
    await check(page, 'reauth');
    await reauthenticate(page);
    await expect(page).toHaveURL(contactUrl + '#erase');
    await page.getByLabel('Type ERASE to confirm').fill('ERASE');
    await page.getByRole('button', { name: 'Erase contact' }).click();
    await expect(page).toHaveURL(/\/contacts\?erased=1/);
    await expect(page.getByRole('status')).toContainText('was erased');
    const id = new URL(contactUrl).pathname.split('/').pop();
    const gone = await fetch(`${demo.base}/v1/contacts/${id}`, { headers: { authorization: `Bearer ${demo.key}` } });
    expect(gone.status).toBe(404);
  });

  test('the shield judges a pasted message and the audit chain verifies', async () => {
    await page.goto(`${demo.base}/shield`);
    await page.getByLabel('Message or link').fill('URGENT: your parcel is held, pay the 1.99 fee now at http://parcel-redelivery-fee.xyz/pay');
    await page.getByRole('button', { name: 'Scan' }).click();
    await expect(page.locator('#verdict')).toBeVisible();
    await expect(page.locator('#verdict .badge')).not.toHaveText('ham');
    await check(page, 'shield');
    await page.goto(`${demo.base}/audit`);
    await expect(page.getByRole('cell', { name: 'api_key.created' }).first()).toBeVisible();
    await page.getByRole('button', { name: 'Verify the chain' }).click();
    await expect(page.locator('#chain-status')).toContainText('The chain is intact');
    await check(page, 'audit');
  });

  test('the owner invites an agent from the members page', async () => {
    await page.goto(`${demo.base}/security/members`);
    await check(page, 'security-members');
    const invite = async () => {
      await page.getByLabel('Email').fill('agent@example.com');
      await page.getByLabel(/^Role You can grant/).selectOption('agent');
      await page.getByRole('button', { name: 'Create invitation' }).click();
    };
    await invite();
    if (page.url().includes('/reauth')) {
      await reauthenticate(page);
      await expect(page).toHaveURL(/\/security\/members$/);
      await invite();
    }
    invitationUrl = (await page.locator('#invitation-link').textContent()).trim();
    expect(invitationUrl).toContain('/invitations/accept?token=');
    await expect(page.getByRole('row', { name: /agent@example.com/ })).toBeVisible();
  });

  test('an invited agent joins, and neither sees nor reaches the API key page', async ({ browser }) => {
    const agentContext = await browser.newContext();
    const agent = await agentContext.newPage();
    await agent.goto(invitationUrl);
    await expect(agent.getByRole('heading', { name: 'Join demo' })).toBeVisible();
    await check(agent, 'invitation');
    await agent.getByLabel(/Choose a password/).fill('agent-password-1234');
    await agent.getByLabel('The same password again').fill('agent-password-1234');
    await agent.getByRole('button', { name: 'Create account and join' }).click();
    await expect(agent).toHaveURL(/\/login\?joined=1/);
    await expect(agent.getByRole('status')).toContainText('Your account is ready');
    await agent.getByLabel('Email').fill('agent@example.com');
    await agent.getByLabel('Password').fill('agent-password-1234');
    await agent.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(agent).toHaveURL(/\/inbox$/);
    await expect(agent.getByRole('navigation', { name: 'Sections' })).not.toContainText('Developers');
    const res = await agent.goto(`${demo.base}/developers/keys`);
    expect(res.status()).toBe(403);
    await expect(agent.getByRole('heading')).toContainText("You don't have access");
    await check(agent, 'forbidden');
    // The owner makes the agent a developer; the agent's next page shows Developers.
    await page.goto(`${demo.base}/security/members`);
    await page.getByLabel('Role of agent@example.com', { exact: true }).selectOption('developer');
    await page.getByRole('button', { name: 'Change the role of agent@example.com' }).click();
    if (page.url().includes('/reauth')) {
      await reauthenticate(page);
      await page.getByLabel('Role of agent@example.com', { exact: true }).selectOption('developer');
      await page.getByRole('button', { name: 'Change the role of agent@example.com' }).click();
    }
    await expect(page).toHaveURL(/\/security\/members$/);
    await expect(page.locator('tr[data-member="agent@example.com"]')).toContainText('developer');
    await check(page, 'security-members-changed');
    await agent.goto(`${demo.base}/inbox`);
    await expect(agent.getByRole('navigation', { name: 'Sections' })).toContainText('Developers');
    await agentContext.close();
  });

  test('the owner reviews access, exports the workspace, and schedules and cancels its deletion', async () => {
    await page.goto(`${demo.base}/security/members`);
    const me = page.locator(`tr[data-member="${demo.email}"]`);
    await expect(me.getByRole('cell', { name: 'on', exact: true })).toBeVisible();
    await expect(page.locator('tr[data-member="agent@example.com"]').getByRole('cell', { name: 'off', exact: true })).toBeVisible();
    await check(page, 'security-members-access');

    // The export asks for a recent sign-in like every sensitive action.
    let res = await page.request.get(`${demo.base}/security/workspace/export`, { maxRedirects: 0 });
    if (res.status() === 303) {
      await page.goto(res.headers()['location'].startsWith('http') ? res.headers()['location'] : `${demo.base}${res.headers()['location']}`);
      await reauthenticate(page);
      res = await page.request.get(`${demo.base}/security/workspace/export`, { maxRedirects: 0 });
    }
    expect(res.status()).toBe(200);
    expect(res.headers()['content-disposition']).toContain('.ndjson');
    const lines = (await res.text()).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0].kind).toBe('workspace');
    expect(lines.some((l) => l.kind === 'audit_event')).toBe(true);

    await page.goto(`${demo.base}/security/workspace`);
    await expect(page.getByRole('heading', { name: 'Delete this workspace' })).toBeVisible();
    await check(page, 'security-workspace');
    const ask = async (name) => {
      await page.getByLabel(/Type the workspace's name/).fill(name);
      await page.getByRole('button', { name: 'Delete this workspace' }).click();
      if (page.url().includes('/reauth')) {
        await reauthenticate(page);
        await page.getByLabel(/Type the workspace's name/).fill(name);
        await page.getByRole('button', { name: 'Delete this workspace' }).click();
      }
    };
    await ask('not the name');
    await expect(page.getByRole('alert')).toContainText("must be the workspace's name");
    await ask('demo');
    await expect(page.locator('#delete-workspace')).toContainText('This workspace will be deleted on');
    await check(page, 'security-workspace-deletion');
    await page.getByRole('button', { name: 'Cancel the deletion' }).click();
    await expect(page.getByRole('status').first()).toContainText('The deletion was cancelled');
    await expect(page.getByRole('button', { name: 'Delete this workspace' })).toBeVisible();
  });
});
