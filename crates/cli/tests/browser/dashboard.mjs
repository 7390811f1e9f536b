// Drives the slipway dashboard in a real browser (Debian's chromium through playwright-core) for
// crates/cli/tests/dashboard.rs. Usage: node dashboard.mjs main|refusals|flags, with SLIPWAY_UI (the
// dashboard's base URL), TOKEN (a deployer token), VIEWER_TOKEN (refusals, flags), SCREENSHOTS (a
// folder; main, flags). Prints `ready` when the main scenario waits for the canary to start (the flags
// scenario: for a flag change made with the CLI), and one JSON line at the end.
// Every wait has a deadline; the browser is closed (and its profile removed) however the run ends.

import { chromium } from 'playwright-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const base = process.env.SLIPWAY_UI;
const app = process.env.APP || 'shop';
const WAIT = 120_000;
const log = (...a) => console.error('[browser]', ...a);

function check(cond, what) {
  if (!cond) throw new Error(`check failed: ${what}`);
  log('ok:', what);
}

async function login(page, token) {
  await page.goto(`${base}/ui/login`);
  await page.fill('#token', token);
  const [resp] = await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  return resp;
}

async function text(page, selector) {
  return (await page.locator(selector).first().textContent({ timeout: WAIT })).trim();
}

async function noSideScroll(page, what) {
  const [sw, iw] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  check(sw <= iw + 1, `${what}: no horizontal scrolling (${sw} <= ${iw})`);
}

async function bytes(page, path) {
  return page.evaluate(async (p) => (await (await fetch(p)).arrayBuffer()).byteLength, path);
}

async function main(page) {
  const out = {};
  const resp = await login(page, process.env.TOKEN);
  check(new URL(page.url()).pathname === '/ui/', 'a deployer token logs in to the overview');
  check(resp && resp.status() === 200, 'the overview answers 200');
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'slipway_session');
  check(session && session.httpOnly && session.sameSite === 'Strict' && session.path === '/ui',
    'the session cookie is HttpOnly, SameSite=Strict, Path=/ui');
  await page.locator(`.card[data-app="${app}"]`).waitFor({ timeout: WAIT });

  await page.goto(`${base}/ui/apps/${app}`);
  await page.locator('#live.on').waitFor({ timeout: WAIT });
  await page.evaluate(() => { window.__sameDocument = true; });
  console.log('ready');

  // Everything below arrives over SSE: the page is never reloaded.
  await page.waitForFunction(() => /canary/.test(document.querySelector('#rollout .state')?.textContent || ''),
    null, { timeout: WAIT });
  log('ok: the canary shows up without a reload');
  const weights = new Set();
  let verdicts = new Set();
  const end = Date.now() + WAIT;
  for (;;) {
    const w = await page.evaluate(() => document.querySelector('#rollout .weight[data-release="2"]')?.textContent);
    if (w) weights.add(Number(w));
    for (const v of await page.locator('#verdicts .badge').allTextContents()) verdicts.add(v.trim());
    if (weights.has(50)) break;
    if (Date.now() > end) throw new Error(`the canary never reached 50 % (seen ${[...weights]})`);
    await page.waitForTimeout(200);
  }
  check(weights.has(50), `the weights moved on the page (seen ${[...weights].join(', ')} %)`);
  await page.locator('ol.steps li.current', { hasText: 'pause until promoted' }).waitFor({ timeout: WAIT });
  check((await page.locator('ol.steps li.done').count()) >= 3, 'the timeline marks the steps done');
  const pathOf = () => page.evaluate(() => document.querySelector('#charts figure:first-child path.series.c1')?.getAttribute('d') || '');
  await page.waitForFunction(() => (document.querySelector('#charts figure:first-child path.series.c1')?.getAttribute('d') || '').length > 20,
    null, { timeout: WAIT });
  const before = await pathOf();
  await page.waitForFunction((b) => {
    const d = document.querySelector('#charts figure:first-child path.series.c1')?.getAttribute('d') || '';
    return d.length > 0 && d !== b;
  }, before, { timeout: WAIT });
  check(true, 'the canary\'s request-rate chart redraws by itself');
  check(await page.evaluate(() => window.__sameDocument === true), 'no reload happened');
  check((await page.locator('#charts .threshold').count()) >= 1, 'analysis thresholds are drawn on the charts');
  check((await page.locator('#charts .tick', { hasText: '/s' }).count()) > 0, 'the rate chart has units on its axis');
  const logLines = await page.waitForFunction(() => (document.querySelector('#logtail')?.textContent || '').includes('shop-v'),
    null, { timeout: WAIT });
  check(logLines, 'the log tail shows the instances\' lines');
  out.verdicts = [...verdicts];
  out.weights = [...weights];
  if (process.env.SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.SCREENSHOTS, 'dashboard-app.png'), fullPage: true });
  }

  await page.goto(`${base}/ui/`);
  await page.locator(`.card[data-app="${app}"] tr.release[data-release="2"]`).waitFor({ timeout: WAIT });
  await page.locator('#live.on').waitFor({ timeout: WAIT });
  if (process.env.SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.SCREENSHOTS, 'dashboard-overview.png'), fullPage: true });
  }
  out.bytes = {
    overview: await bytes(page, '/ui/'),
    app: await bytes(page, `/ui/apps/${app}`),
    script: await bytes(page, '/ui/live.js'),
  };
  check(out.bytes.app + out.bytes.script < 150_000, `the app page weighs ${out.bytes.app + out.bytes.script} bytes (< 150 KB)`);

  await page.setViewportSize({ width: 390, height: 844 });
  await noSideScroll(page, 'overview at 390 px');
  await page.goto(`${base}/ui/apps/${app}`);
  await page.locator('#charts svg').first().waitFor({ timeout: WAIT });
  await noSideScroll(page, 'app page at 390 px');
  check(await page.locator('a[data-action="abort"]').isVisible(), 'the abort button is there at 390 px');
  if (process.env.SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.SCREENSHOTS, 'dashboard-app-390.png'), fullPage: false });
  }
  await page.setViewportSize({ width: 1280, height: 900 });

  await page.click('a[data-action="abort"]');
  const consequence = await text(page, '#consequence');
  check(/goes back to v1/.test(consequence), `the confirmation says what will happen: "${consequence}"`);
  await Promise.all([page.waitForNavigation(), page.click('#confirm')]);
  const after = await page.evaluate(() => document.querySelector('main')?.innerText || '');
  check(/Aborted/.test(after), `the abort was accepted (${page.url()}: ${after.slice(0, 200)})`);
  await page.waitForFunction(() => /no rollout in progress/.test(document.querySelector('#rollout .state')?.textContent || ''),
    null, { timeout: WAIT });
  check(true, 'the page shows the rollout ended, back on v1');
  return out;
}

async function refusals(page) {
  const wrong = await login(page, 'slw_' + '0'.repeat(64));
  check(wrong.status() === 401, 'a wrong token is refused (401)');
  check(/not valid/.test(await text(page, '#note')), 'the login page says the token is not valid');
  await page.goto(`${base}/ui/apps/${app}`);
  check(new URL(page.url()).pathname === '/ui/login', 'without a session the app page sends to the login');

  await login(page, process.env.VIEWER_TOKEN);
  await page.goto(`${base}/ui/apps/${app}`);
  await page.locator('#history tr.history-row').first().waitFor({ timeout: WAIT });
  check((await page.locator('[data-action]').count()) === 0, 'a viewer sees no action buttons');
  const csrf = await page.locator('input[name=csrf]').first().inputValue();
  const post = (path, body) => page.evaluate(async ([p, b]) => (await fetch(p, {
    method: 'POST', body: new URLSearchParams(b), redirect: 'manual' })).status, [path, body]);
  check(await post(`/ui/apps/${app}/actions/rollback`, { csrf }) === 403, 'a viewer\'s POST with its own CSRF token gets 403');
  check(await post(`/ui/apps/${app}/actions/abort`, { csrf: 'forged' }) === 403, 'a forged POST gets 403');
  const confirm = await page.goto(`${base}/ui/apps/${app}/confirm/rollback`);
  check(confirm.status() === 403, 'a viewer cannot open a confirmation page');

  // A deployer's session without the CSRF token is refused too: the role alone is not enough.
  await page.context().clearCookies();
  await login(page, process.env.TOKEN);
  await page.goto(`${base}/ui/apps/${app}`);
  await page.locator('a[data-action="rollback"]').waitFor({ timeout: WAIT });
  check(await post(`/ui/apps/${app}/actions/rollback`, { csrf: 'forged' }) === 403, 'a deployer\'s POST without the CSRF token gets 403');

  // The session expires (the daemon runs with a short --session-ttl): the live page goes to the login.
  await page.waitForURL((u) => u.pathname === '/ui/login', { timeout: WAIT });
  check(/session has ended/.test(await text(page, '#note')), 'an expired session is sent back to the login');
  await page.goto(`${base}/ui/`);
  check(new URL(page.url()).pathname === '/ui/login', 'the expired session no longer opens pages');
  return {};
}

// The flags page: live, a kill from the page with its confirmation, and a viewer without buttons.
async function flags(page) {
  const out = {};
  await login(page, process.env.TOKEN);
  await page.locator(`.card[data-app="${app}"] a.flags-link`).click();
  await page.waitForURL((u) => u.pathname === `/ui/apps/${app}/flags`, { timeout: WAIT });
  await page.locator('#live.on').waitFor({ timeout: WAIT });
  const card = (flag) => page.locator(`.card.flag[data-flag="${flag}"]`);
  check(await card('new-checkout').getAttribute('data-state') === 'enabled', 'new-checkout shows as enabled');
  const targeting = await text(page, '.card.flag[data-flag="new-checkout"] td.targeting');
  check(/email ends_with @example\.com → on/.test(targeting) && /fractional on targetingKey: on 25 % \/ off 75 %/.test(targeting),
    `the targeting reads as words: "${targeting}"`);
  check(/default/.test(await text(page, '.card.flag[data-flag="new-checkout"] td')), 'the variants show which is the default');
  check((await page.locator('#changes tr.change').count()) >= 1, 'the recent changes come from the audit');
  await page.evaluate(() => { window.__sameDocument = true; });
  console.log('ready');

  // The test disables `color` with the CLI: the page shows it without a reload.
  await page.locator('.card.flag[data-flag="color"][data-state="disabled"]').waitFor({ timeout: WAIT });
  check(await page.evaluate(() => window.__sameDocument === true), 'a change made elsewhere shows up live');
  if (process.env.SCREENSHOTS) {
    await page.screenshot({ path: join(process.env.SCREENSHOTS, 'dashboard-flags.png'), fullPage: true });
  }

  await page.click('a[data-flag-action="kill"][data-flag="new-checkout"]');
  const consequence = await text(page, '#consequence');
  check(/every evaluation returns its default variant `off` at once, everywhere/.test(consequence),
    `the confirmation says what will happen: "${consequence}"`);
  await page.fill('input[name=reason]', 'checkout errors');
  await Promise.all([page.waitForNavigation(), page.click('#confirm')]);
  check(/kill new-checkout: done/.test(await text(page, '#flash')), 'the kill was accepted');
  await page.locator('.card.flag[data-flag="new-checkout"][data-state="killed"]').waitFor({ timeout: WAIT });
  const last = await text(page, '.card.flag[data-flag="new-checkout"] td.changes div');
  check(/kill by .*\(dashboard\).*killed.*checkout errors/.test(last), `the flag's last change names the user: "${last}"`);
  check((await page.locator('a[data-flag-action="kill"][data-flag="new-checkout"]').count()) === 0,
    'a killed flag offers enable and disable, not kill');
  out.lastChange = last;

  await page.setViewportSize({ width: 390, height: 844 });
  await noSideScroll(page, 'flags page at 390 px');
  await page.setViewportSize({ width: 1280, height: 900 });

  // A viewer: everything shown, nothing to press, and posts refused.
  await page.context().clearCookies();
  await login(page, process.env.VIEWER_TOKEN);
  await page.goto(`${base}/ui/apps/${app}/flags`);
  await card('new-checkout').waitFor({ timeout: WAIT });
  check((await page.locator('[data-flag-action]').count()) === 0, 'a viewer sees no flag buttons');
  const csrf = await page.locator('input[name=csrf]').first().inputValue();
  const post = (path, body) => page.evaluate(async ([p, b]) => (await fetch(p, {
    method: 'POST', body: new URLSearchParams(b), redirect: 'manual' })).status, [path, body]);
  check(await post(`/ui/apps/${app}/flags/new-checkout/actions/enable`, { csrf }) === 403,
    'a viewer\'s flag POST with its own CSRF token gets 403');
  check(await post(`/ui/apps/${app}/flags/color/actions/enable`, { csrf: 'forged' }) === 403, 'a forged flag POST gets 403');
  const confirm = await page.goto(`${base}/ui/apps/${app}/flags/new-checkout/confirm/enable`);
  check(confirm.status() === 403, 'a viewer cannot open a flag confirmation page');
  return out;
}

const scenarios = { main, refusals, flags };
const scenario = scenarios[process.argv[2]];
if (!scenario || !base) {
  console.error('usage: SLIPWAY_UI=http://127.0.0.1:PORT TOKEN=... node dashboard.mjs main|refusals|flags');
  process.exit(2);
}
const profile = mkdtempSync(join(tmpdir(), 'slipway-chromium-'));
let context;
let code = 0;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
      '--no-first-run', '--disable-sync'],
    viewport: { width: 1280, height: 900 },
  });
  const page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(WAIT);
  const result = await scenario(page);
  console.log(JSON.stringify({ ok: true, ...result }));
} catch (e) {
  console.error('[browser] FAILED:', e && e.stack || e);
  code = 1;
} finally {
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
}
process.exit(code);
