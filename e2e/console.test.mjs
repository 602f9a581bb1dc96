// End-to-end tests of the admin console in real headless Chromium.
//
// .ci/e2e starts `scimitar serve` and creates the accounts; this file gets
// them from the environment. The tests run in order and share state (the
// token generated in one is used and revoked by the next ones), like an
// administrator walking through the console. Screenshots of every page go
// to e2e/screenshots/.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set (run the suite through .ci/e2e)`);
  return v;
};
const BASE = env('SCIMITAR_E2E_URL');
const TENANT = env('SCIMITAR_E2E_TENANT');
const ADMIN = { email: env('SCIMITAR_E2E_ADMIN_EMAIL'), password: env('SCIMITAR_E2E_ADMIN_PASSWORD') };
const VIEWER = { email: env('SCIMITAR_E2E_VIEWER_EMAIL'), password: env('SCIMITAR_E2E_VIEWER_PASSWORD') };
const OPERATOR = { email: env('SCIMITAR_E2E_OPERATOR_EMAIL'), password: env('SCIMITAR_E2E_OPERATOR_PASSWORD') };
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
mkdirSync(SHOTS, { recursive: true });

const T = `/console/t/${TENANT}`;
const USER_NAME = `ada.lovelace.${Date.now()}@example.com`;
const GROUP_NAME = `Analytical Engineers ${Date.now()}`;

let browser;
let admin; // the administrator's page
let secret; // the Secret Token generated in the console
let tokenId;
let userId;

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function signIn(page, who) {
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Email').fill(who.email);
  await page.getByLabel('Password').fill(who.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
}

async function scim(method, path, body, token = secret) {
  const res = await fetch(`${BASE}/scim/${TENANT}/v2${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  ctx.setDefaultTimeout(10_000);
  admin = await ctx.newPage();
});

after(async () => {
  await browser?.close();
});

test('the root leads to sign-in, and an admin signs in to the Overview', async () => {
  const res = await admin.goto(`${BASE}/`);
  assert.equal(new URL(admin.url()).pathname, '/login');
  const headers = res.headers();
  assert.match(headers['content-security-policy'], /frame-ancestors 'none'/);
  assert.doesNotMatch(headers['content-security-policy'], /unsafe-inline/);
  assert.equal(headers['referrer-policy'], 'no-referrer');
  await shot(admin, '01-login');
  await signIn(admin, ADMIN);
  await admin.waitForURL(`**${T}`);
  await admin.getByRole('heading', { name: 'Overview' }).waitFor();
  const cookies = await admin.context().cookies();
  const session = cookies.find((c) => c.name.endsWith('scimitar_session'));
  assert.ok(session, 'a session cookie is set');
  assert.equal(session.httpOnly, true);
  assert.equal(session.sameSite, 'Strict');
  await shot(admin, '02-overview-empty');
});

test('Settings → Provisioning shows the Tenant URL and Generate shows a Secret Token once', async () => {
  await admin.getByRole('link', { name: 'Provisioning (Microsoft Entra ID / SCIM)' }).click();
  await admin.getByRole('heading', { name: /Provisioning: Microsoft Entra ID/ }).waitFor();
  const url = await admin.getByLabel('Tenant URL', { exact: true }).inputValue();
  assert.equal(url, `${BASE}/scim/${TENANT}/v2`);
  assert.match(await admin.locator('#last-request').innerText(), /none yet/);
  await admin.getByLabel('Label').fill('Entra (e2e)');
  await admin.getByRole('button', { name: 'Generate' }).click();
  await admin.getByText('you will not see it again').waitFor();
  secret = await admin.getByRole('textbox', { name: 'Secret Token' }).inputValue();
  assert.match(secret, /^scim_[0-9A-Za-z]{49}$/);
  assert.ok(!admin.url().includes(secret), 'the token is never in a URL');
  const row = admin.locator('#tokens tbody tr', { hasText: 'Entra (e2e)' });
  assert.match(await row.innerText(), new RegExp(ADMIN.email.replace(/[.@]/g, '\\$&')));
  tokenId = await row.getAttribute('data-token-id');
  // The token column keeps a token's hint on one line.
  const hint = row.locator('td.token code');
  assert.equal(await hint.evaluate((el) => getComputedStyle(el).whiteSpace), 'nowrap');
  assert.equal(await hint.evaluate((el) => el.getClientRects().length), 1);
  // The "last request" line says it is as of the page's loading.
  assert.match(await admin.locator('#last-request').innerText(), /when this page was loaded; it does not update by itself/);
  await shot(admin, '03-provisioning-generated');
  // Post-redirect-get: the page is a GET, and reloading it neither shows
  // the token again nor generates another one.
  assert.equal(new URL(admin.url()).pathname, `${T}/settings/provisioning`);
  await admin.reload();
  await admin.getByRole('heading', { name: /Provisioning: Microsoft Entra ID/ }).waitFor();
  assert.equal(await admin.locator('#secret-token').count(), 0);
  assert.equal(await admin.locator('#tokens tbody tr', { hasText: 'Entra (e2e)' }).count(), 1);
});

test('the token creates a user and a group over SCIM (as Entra would)', async () => {
  // Test Connection first: a lookup of a user that cannot exist.
  const probe = await scim('GET', `/Users?filter=${encodeURIComponent('userName eq "8c3c1f3e-0000-4000-8000-000000000000"')}`);
  assert.equal(probe.status, 200);
  assert.equal(probe.body.totalResults, 0);
  const u = await scim('POST', '/Users', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: USER_NAME,
    active: true,
    name: { givenName: 'Ada', familyName: 'Lovelace' },
    emails: [{ type: 'work', value: USER_NAME, primary: true }],
    externalId: 'ada',
  });
  assert.equal(u.status, 201, JSON.stringify(u.body));
  userId = u.body.id;
  const g = await scim('POST', '/Groups', {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:Group'],
    displayName: GROUP_NAME,
    members: [{ value: userId }],
  });
  assert.equal(g.status, 201, JSON.stringify(g.body));
});

test('Users lists, searches and shows the user', async () => {
  await admin.goto(`${BASE}${T}/users`);
  await admin.getByRole('link', { name: USER_NAME }).waitFor();
  await admin.getByLabel('Search by user name, name or email').fill('lovelace');
  await admin.getByRole('button', { name: 'Search' }).click();
  await admin.getByRole('link', { name: USER_NAME }).waitFor();
  assert.match(await admin.locator('table caption').innerText(), /1 user matching/);
  await shot(admin, '04-users');
  await admin.getByLabel('Search by user name, name or email').fill('nobody-like-this');
  await admin.getByRole('button', { name: 'Search' }).click();
  await admin.getByText('No users match this search').waitFor();
  await admin.goto(`${BASE}${T}/users`);
  await admin.getByRole('link', { name: USER_NAME }).click();
  await admin.getByRole('heading', { name: USER_NAME }).waitFor();
  const facts = await admin.locator('dl.facts').innerText();
  assert.match(facts, /Active/);
  assert.match(facts, /Ada Lovelace/);
  assert.match(facts, new RegExp(GROUP_NAME));
  await shot(admin, '05-user');
});

test('Groups lists the group with its member count and members', async () => {
  await admin.goto(`${BASE}${T}/groups`);
  const row = admin.locator('tbody tr', { hasText: GROUP_NAME });
  await row.waitFor();
  assert.match(await row.innerText(), /\b1\b/);
  await shot(admin, '06-groups');
  await admin.getByRole('link', { name: GROUP_NAME }).click();
  await admin.getByRole('heading', { name: GROUP_NAME }).waitFor();
  await admin.getByRole('link', { name: USER_NAME }).waitFor();
  await shot(admin, '07-group');
});

test('Provisioning activity shows both creations, expandable, filterable and exportable', async () => {
  await admin.goto(`${BASE}${T}/activity`);
  const userEvent = admin.locator('li.event', { hasText: USER_NAME });
  const groupEvent = admin.locator('li.event', { hasText: GROUP_NAME });
  await userEvent.first().waitFor();
  await groupEvent.first().waitFor();
  assert.match(await userEvent.first().locator('summary').innerText(), /create/);
  await userEvent.first().locator('summary').click();
  await userEvent.first().getByText('userName').first().waitFor();
  await shot(admin, '08-activity');
  await admin.getByLabel('Outcome').selectOption('failure');
  await admin.getByRole('button', { name: 'Filter' }).click();
  await admin.getByText('No events match.').waitFor();
  const csv = await admin.request.get(`${BASE}${T}/activity.csv`);
  assert.equal(csv.status(), 200);
  assert.match(await csv.text(), new RegExp(USER_NAME.replace(/[.@]/g, '\\$&')));
});

test('Overview counts them and the last request from the identity provider is shown', async () => {
  await admin.goto(`${BASE}${T}`);
  assert.equal(await admin.locator('#count-users').innerText(), '1');
  assert.equal(await admin.locator('#count-groups').innerText(), '1');
  await shot(admin, '09-overview');
  await admin.goto(`${BASE}${T}/settings/provisioning`);
  assert.doesNotMatch(await admin.locator('#last-request').innerText(), /none yet/);
});

test('Revoke (confirmed) makes the next SCIM request fail with 401', async () => {
  await admin.goto(`${BASE}${T}/settings/provisioning`);
  await admin.locator(`#tokens tr[data-token-id="${tokenId}"]`).getByRole('link', { name: /Revoke/ }).click();
  await admin.getByRole('heading', { name: /Revoke Secret Token/ }).waitFor();
  await shot(admin, '10-revoke-confirm');
  await admin.getByRole('button', { name: 'Revoke token' }).click();
  await admin.getByText(/is revoked/).waitFor();
  assert.match(await admin.locator(`#tokens tr[data-token-id="${tokenId}"]`).innerText(), /Revoked/);
  await shot(admin, '11-revoked');
  const r = await scim('GET', '/Users');
  assert.equal(r.status, 401);
});

test('Validate this tenant runs Entra\'s SCIM Validator against the tenant and shows the report', async () => {
  await admin.goto(`${BASE}${T}/settings/provisioning`);
  await admin.getByRole('button', { name: 'Validate this tenant' }).click();
  // The whole suite with a short load check: seconds, more on a busy machine.
  await admin.locator('#validate-summary').waitFor({ timeout: 180_000 });
  const summary = await admin.locator('#validate-summary').innerText();
  assert.match(summary, /^\d+ passed, 0 failed, 0 skipped in [\d.]+ s\. Entra can provision this tenant\.$/);
  const rows = admin.locator('#validate-report tbody tr');
  assert.ok((await rows.count()) >= 39, `${await rows.count()} tests`);
  assert.equal(await admin.locator('#validate-report tr[data-status="fail"]').count(), 0);
  await admin.locator('#validate-report tr', { hasText: 'Patch Group - Add Member' }).waitFor();
  assert.match(await admin.getByText(/^Load check:/).innerText(), /p99 [\d.]+ ms/);
  await shot(admin, '11b-validate-report');
  // The run's own token is revoked; the tenant holds what it held.
  await admin.getByRole('link', { name: 'Back to Provisioning' }).click();
  const row = admin.locator('#tokens tbody tr', { hasText: 'validator' });
  assert.equal(await row.count(), 1);
  assert.match(await row.innerText(), /Revoked/);
  await admin.goto(`${BASE}${T}`);
  assert.equal(await admin.locator('#count-users').innerText(), '1');
  assert.equal(await admin.locator('#count-groups').innerText(), '1');
});

test('a Viewer sees everything but cannot generate or revoke', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  ctx.setDefaultTimeout(10_000);
  const page = await ctx.newPage();
  try {
    await signIn(page, VIEWER);
    await page.waitForURL(`**${T}`);
    await page.goto(`${BASE}${T}/settings/provisioning`);
    await page.locator('#viewer-note').waitFor();
    assert.equal(await page.getByRole('button', { name: 'Generate' }).count(), 0);
    assert.equal(await page.locator('#tokens a', { hasText: 'Revoke' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Validate this tenant' }).count(), 0);
    await shot(page, '12-viewer-provisioning');
    // The server refuses too, whatever the page shows.
    const csrf = await page.locator('form[action="/logout"] input[name=csrf]').inputValue();
    const gen = await page.request.post(`${BASE}${T}/settings/provisioning/tokens`, {
      form: { csrf, label: 'sneaky' },
      headers: { origin: BASE },
    });
    assert.equal(gen.status(), 403);
    const validate = await page.request.post(`${BASE}${T}/settings/provisioning/validate`, {
      form: { csrf },
      headers: { origin: BASE },
    });
    assert.equal(validate.status(), 403);
    const confirm = await page.goto(`${BASE}${T}/settings/provisioning/tokens/${tokenId}/revoke`);
    assert.equal(confirm.status(), 403);
    await shot(page, '13-viewer-forbidden');
    await page.goto(`${BASE}${T}/users`);
    await page.getByRole('link', { name: USER_NAME }).waitFor();
  } finally {
    await ctx.close();
  }
});

test('Console accounts lists the Admin and the Viewer', async () => {
  await admin.goto(`${BASE}${T}/settings/accounts`);
  const table = await admin.locator('table').first().innerText();
  assert.match(table, /admin/);
  assert.match(table, /viewer/);
  await shot(admin, '14-accounts');
});

test('an operator sees every tenant and creates one with its first admin', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  ctx.setDefaultTimeout(10_000);
  const page = await ctx.newPage();
  try {
    await signIn(page, OPERATOR);
    await page.waitForURL('**/console/tenants');
    await page.getByRole('link', { name: TENANT, exact: true }).waitFor();
    const name = `acme-${Date.now()}`;
    await page.getByLabel('Tenant name').fill(name);
    await page.getByLabel("First admin's email").fill(`first@${name}.example`);
    await page.getByLabel("First admin's password").fill('a long enough password');
    await page.getByRole('button', { name: 'Create tenant' }).click();
    await page.getByText(`Created tenant '${name}'`).waitFor();
    await shot(page, '15-operator-tenants');
    await page.getByRole('link', { name, exact: true }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
  } finally {
    await ctx.close();
  }
});

test('a wrong password is rejected, and repeated failures are throttled', async () => {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  ctx.setDefaultTimeout(10_000);
  const page = await ctx.newPage();
  try {
    await signIn(page, { email: VIEWER.email, password: 'not the password' });
    await page.getByText('Wrong email or password.').waitFor();
    assert.equal(new URL(page.url()).pathname, '/login');
    await shot(page, '16-login-wrong-password');
    for (let i = 0; i < 4; i++) {
      await signIn(page, { email: VIEWER.email, password: `wrong ${i}` });
      await page.locator('#login-error').waitFor();
    }
    // Locked now, even with the right password.
    await signIn(page, VIEWER);
    await page.getByText(/Too many failed sign-in attempts/).waitFor();
    assert.equal(new URL(page.url()).pathname, '/login');
    await shot(page, '17-login-throttled');
  } finally {
    await ctx.close();
  }
});

test('signing out ends the session', async () => {
  await admin.goto(`${BASE}${T}`);
  await admin.getByRole('button', { name: 'Sign out' }).click();
  await admin.getByText('You are signed out.').waitFor();
  await admin.goto(`${BASE}${T}/users`);
  assert.equal(new URL(admin.url()).pathname, '/login');
});
