// End-to-end tests of the console's Applications pages (provisioning jobs)
// in real headless Chromium, as an administrator walks through them: a job
// from the tenant `hr` (a SCIM directory on the same server) into the
// tenant `crm` (its Tenant URL), created, tested, mapped, scoped, switched
// On, watched, read in its logs, provisioned on demand, held by its
// deletion threshold and released with Allow deletes.
//
// .ci/e2e starts `scimitar serve` (with --job-egress-allow 127.0.0.0/8:
// the job connects to this same server on loopback) and creates the
// tenants and tokens; this file gets them from the environment. Tests run
// in order and share state. Screenshots go to e2e/screenshots/ (20-…).

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
const HR_TOKEN = env('SCIMITAR_E2E_HR_TOKEN');
const CRM_TOKEN = env('SCIMITAR_E2E_CRM_TOKEN');
const SHOTS = join(dirname(fileURLToPath(import.meta.url)), 'screenshots');
mkdirSync(SHOTS, { recursive: true });

const APPS = `/console/t/${TENANT}/applications`;
const JOB = `${APPS}/crm`;
// Enough users that the initial cycle (one request in flight) lasts long
// enough to watch its progress bar.
const USERS = 1200;

let browser;
let page;
let hrIds = [];

async function shot(name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function scim(tenant, token, method, path, body) {
  const res = await fetch(`${BASE}/scim/${tenant}/v2${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/scim+json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

function person(i) {
  return {
    schemas: ['urn:ietf:params:scim:schemas:core:2.0:User'],
    userName: `user${String(i).padStart(4, '0')}@hr.example.org`,
    name: { givenName: `Given${i}`, familyName: `Family${i}` },
    emails: [{ value: `user${i}@hr.example.org`, type: 'work', primary: true }],
    active: true,
  };
}

async function crmUsers(filter) {
  const q = filter ? `&filter=${encodeURIComponent(filter)}` : '';
  const r = await scim('crm', CRM_TOKEN, 'GET', `/Users?count=1${q}`);
  return r.body.totalResults;
}

async function until(what, fn, timeout = 60_000) {
  const start = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

before(async () => {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
  });
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  ctx.setDefaultTimeout(15_000);
  page = await ctx.newPage();
  // The directory: USERS people in the tenant `hr`, through Bulk.
  for (let start = 0; start < USERS; start += 500) {
    const ops = [];
    for (let i = start; i < Math.min(USERS, start + 500); i++) {
      ops.push({ method: 'POST', path: '/Users', bulkId: `u${i}`, data: person(i) });
    }
    const r = await scim('hr', HR_TOKEN, 'POST', '/Bulk', {
      schemas: ['urn:ietf:params:scim:api:messages:2.0:BulkRequest'],
      Operations: ops,
    });
    assert.equal(r.status, 200, JSON.stringify(r.body).slice(0, 300));
    for (const op of r.body.Operations) {
      assert.equal(op.status, '201', JSON.stringify(op));
      hrIds.push(op.location.split('/').pop());
    }
  }
  await page.goto(`${BASE}/login`);
  await page.getByLabel('Email').fill(ADMIN.email);
  await page.getByLabel('Password').fill(ADMIN.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { name: 'Overview' }).waitFor();
});

after(async () => {
  await browser?.close();
});

test('Applications creates a job from its file, and a mistake names its line and key', async () => {
  await page.getByRole('link', { name: 'Applications' }).click();
  await page.getByRole('heading', { name: 'Applications' }).waitFor();
  assert.match(await page.locator('#jobs').innerText(), /No applications yet/);
  // A mistake first: the form comes back with it.
  await page.getByLabel('Job file').fill('name = "crm"\ncolour = "blue"\n');
  await page.getByRole('button', { name: 'Create' }).click();
  const error = await page.getByRole('alert').innerText();
  assert.match(error, /line 2/i);
  assert.match(error, /colour/);
  await page.getByLabel('Job file').fill(`name = "crm"
interval = "5s"
concurrency = 1
deletion_threshold = 2

[source]
kind = "scim"
url = "${BASE}/scim/hr/v2"
token = "${HR_TOKEN}"

[target]
url = "${BASE}/scim/crm/v2"   # the application's Tenant URL
token = "${CRM_TOKEN}"

[scope]
mode = "all"
`);
  await shot('20-applications-new');
  await page.getByRole('button', { name: 'Create' }).click();
  await page.getByRole('heading', { name: 'crm: Provisioning' }).waitFor();
  assert.match(await page.locator('#job-status').innerText(), /off/);
  const html = await page.content();
  assert.ok(!html.includes(CRM_TOKEN) && !html.includes(HR_TOKEN), 'no secret on the page');
});

test('Test Connection says whether the Secret Token is accepted', async () => {
  await page.getByLabel('Secret Token').fill('scim_not-the-token');
  await page.getByRole('button', { name: 'Test Connection' }).click();
  assert.match(await page.getByRole('alert').innerText(), /Test Connection failed/);
  await page.getByLabel('Secret Token').fill(CRM_TOKEN);
  await page.getByRole('button', { name: 'Test Connection' }).click();
  assert.match(await page.getByRole('status').innerText(), /Test Connection succeeded/);
  assert.equal(await page.getByLabel('Secret Token').inputValue(), '', 'the token is never shown back');
  await shot('21-applications-provisioning');
});

test('a mapping is edited with the expression preview: a value, then a parse error with its position', async () => {
  await page.locator('#add-mapping-user').click();
  await page.getByRole('heading', { name: /Add attribute mapping/ }).waitFor();
  await page.getByLabel('Mapping type').selectOption('expression');
  await page.getByLabel('Target attribute').fill('nickName');
  await page.getByLabel('Source object (JSON)').fill('{"givenName": "Ada", "surname": "Lovelace"}');
  await page.getByLabel('Expression', { exact: true }).fill('Join(".", ToLower([givenName]), ToLower([surname]))');
  await page.getByRole('button', { name: 'Test expression' }).click();
  assert.match(await page.locator('#preview-result').innerText(), /ada\.lovelace/);
  await shot('22-mapping-preview');
  await page.getByLabel('Expression', { exact: true }).fill('Join(".", ToLower([givenName])');
  await page.getByRole('button', { name: 'Test expression' }).click();
  assert.match(await page.locator('#preview-error').innerText(), /line 1, column \d+/);
  await shot('23-mapping-preview-error');
  await page.getByLabel('Expression', { exact: true }).fill('Join(".", ToLower([givenName]), ToLower([surname]))');
  await page.getByRole('button', { name: 'Ok' }).click();
  await page.getByRole('heading', { name: 'crm: Provisioning' }).waitFor();
  assert.match(await page.locator('#mappings-user').innerText(), /nickName/);
});

test('a scoping filter is added', async () => {
  await page.locator('#attr-user').fill('userPrincipalName');
  await page.locator('#op-user').selectOption('IS NOT NULL');
  await page.locator('#add-clause-button-user').click();
  await page.getByRole('heading', { name: 'crm: Provisioning' }).waitFor();
  assert.match(await page.locator('#scoping-user').innerText(), /userPrincipalName IS NOT NULL/);
});

test('Provisioning Status On runs the initial cycle: the progress bar moves, then the counts', async () => {
  await page.locator('#status-on').check();
  await page.locator('#save-settings').click();
  assert.match(await page.getByRole('status').innerText(), /Provisioning Status is On/);
  await page.getByRole('link', { name: 'Synchronization details' }).click();
  // The page reloads itself when the cycle starts and ends.
  await page.locator('#cycle-progress').waitFor({ timeout: 30_000 });
  const first = Number(await page.locator('#cycle-progress').getAttribute('value'));
  await until('the progress bar to move', async () =>
    Number(await page.locator('#cycle-progress').getAttribute('value').catch(() => String(USERS))) > first);
  assert.match(await page.locator('#cycle-numbers').innerText(), new RegExp(`of ${USERS} objects`));
  await shot('24-sync-details-progress');
  await page.locator('#last-counts').waitFor({ timeout: 120_000 });
  assert.match(await page.locator('#cycle-state').innerText(), /No cycle is running/);
  assert.match(await page.locator('#last-counts').innerText(), new RegExp(`${USERS}`));
  assert.equal(await crmUsers(), USERS);
  const ada = await scim('crm', CRM_TOKEN, 'GET', `/Users?filter=${encodeURIComponent('userName eq "user0001@hr.example.org"')}`);
  assert.equal(ada.body.Resources[0].nickName, 'given1.family1');
  await shot('25-sync-details');
});

test('Provisioning logs: filters, a record\'s Steps and Modified Properties, CSV', async () => {
  await page.getByRole('link', { name: 'Provisioning logs' }).click();
  await page.getByLabel('Identity').fill('user0001@');
  await page.getByRole('button', { name: 'Filter' }).click();
  const rows = page.locator('#log-records tbody tr');
  assert.equal(await rows.count(), 1);
  assert.match(await rows.first().innerText(), /create\s+success/);
  await shot('26-provisioning-logs');
  const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-csv').click()]);
  assert.match(download.suggestedFilename(), /provisioning-.*\.csv$/);
  await rows.first().getByRole('link').first().click();
  await page.locator('#record-steps').waitFor();
  assert.match(await page.locator('#record-steps').innerText(), /EntryImport/);
  await shot('27-log-record-steps');
  await page.getByRole('link', { name: 'Modified Properties' }).click();
  assert.match(await page.locator('#record-properties').innerText(), /nickName\s+given1\.family1/);
  await shot('28-log-record-properties');
});

test('Provision on demand sends one new user now and shows its steps', async () => {
  const r = await scim('hr', HR_TOKEN, 'POST', '/Users', person(9999));
  assert.equal(r.status, 201);
  await page.getByRole('link', { name: 'Provision on demand' }).click();
  await page.getByLabel(/Source object/).fill(r.body.id);
  await page.getByRole('button', { name: 'Provision' }).click();
  const result = await page.locator('#ondemand-result').innerText();
  assert.match(result, /user9999@hr\.example\.org: create \(success\)/);
  assert.match(result, /EntryExport/);
  await shot('29-provision-on-demand');
  assert.equal(await crmUsers('userName eq "user9999@hr.example.org"'), 1);
});

test('deleting more than the threshold holds the cycle until Allow deletes', async () => {
  for (const id of hrIds.slice(0, 3)) {
    assert.equal((await scim('hr', HR_TOKEN, 'DELETE', `/Users/${id}`)).status, 204);
  }
  await page.goto(`${BASE}${JOB}`);
  await until('the job to be held', async () => {
    await page.reload();
    return (await page.locator('#job-status').innerText()).includes('quarantined');
  });
  assert.match(await page.locator('#quarantine').innerText(), /TooManyDeletes/);
  assert.equal(await crmUsers(), USERS + 1, 'nothing deleted yet');
  await shot('30-deletion-threshold');
  await page.getByRole('button', { name: 'Allow deletes' }).click();
  assert.match(await page.getByRole('status').innerText(), /Deletes allowed/);
  await until('the held deletes to be sent', async () => (await crmUsers()) === USERS - 2);
  await page.reload();
  assert.match(await page.locator('#job-status').innerText(), /on/);
});
