// Drives Debian's headless Chromium through playwright-core (no browser is
// ever downloaded) for tests/tests/serve_browser.rs.
//
//   node tests/browser/board.mjs --url URL --out DIR --pass ENTRY --fail ENTRY --queued ENTRY
//
// Follows three entries of a `vnx batch` (cards are found by batch entry):
// waits for PASS and FAIL in "running" while QUEUED waits in "queued"; then
// PASS and QUEUED in "gating"; then both in "passed" and FAIL in "failed";
// opens the receipts of PASS and FAIL and reads their gate verdicts. After each step it prints one JSON
// line {"stage": …} on stdout (the test releases the held agents and gate on
// these); screenshots go to DIR. Diagnostics go to stderr. Every wait has a
// generous deadline; exit 1 on any failure, with the page's text.
import { mkdtempSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.VNX_CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 120_000;

function parseArgs(argv) {
  const out = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) throw new Error(`bad argument ${argv[i]}`);
    out[argv[i].slice(2)] = argv[i + 1];
  }
  for (const k of ['url', 'out', 'pass', 'fail', 'queued']) if (!out[k]) throw new Error(`--${k} is required`);
  return out;
}

const args = parseArgs(process.argv.slice(2));
const stage = (name, data = {}) => console.log(JSON.stringify({ stage: name, ...data }));
const card = (col, entry) => `#col-${col} .card[data-entry="${entry}"]`;

if (!existsSync(CHROMIUM)) {
  console.error(`${CHROMIUM} is missing: run the install step of bash tests/run.sh (bash tests/browser/install.sh)`);
  process.exit(2);
}
mkdirSync(args.out, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), 'vnx-chromium-'));
let context;
let page;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 1500, height: 900 },
  });
  page = context.pages()[0] || await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('console', (m) => console.error(`browser console ${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => console.error(`browser page error: ${e.message}`));
  // The page must fetch nothing but this server.
  const foreign = [];
  page.on('request', (r) => { if (!r.url().startsWith(args.url)) foreign.push(r.url()); });
  const shot = (name) => page.screenshot({ path: join(args.out, name), fullPage: true });

  await page.goto(args.url);
  await page.waitForSelector('#conn[data-state="live"]');
  await page.waitForSelector(card('running', args.pass));
  await page.waitForSelector(card('running', args.fail));
  await page.waitForSelector(card('queued', args.queued));
  await shot('1-running.png');
  stage('running');

  // The test releases the agents; the gate still holds the passing one.
  await page.waitForSelector(card('gating', args.pass));
  await page.waitForSelector(card('gating', args.queued));
  await page.waitForSelector(card('failed', args.fail));
  await shot('2-gating.png');
  stage('gating');

  // The test releases the gate.
  await page.waitForSelector(card('passed', args.pass));
  await page.waitForSelector(card('passed', args.queued));
  // Verification re-ran after the receipts: no orphan warning is left.
  await page.waitForSelector('#chain[data-ok="true"]');
  await page.waitForFunction(() => document.querySelector('#chain').dataset.ledgerVersion
    === document.body.dataset.ledgerVersion);
  await page.waitForSelector('#findings-box[hidden]', { state: 'attached' });
  await shot('3-done.png');

  const readReceipt = async (col, entry) => {
    const id = await page.getAttribute(card(col, entry), 'data-id');
    await page.click(card(col, entry));
    await page.waitForSelector(`#receipt[data-id="${id}"]:not([hidden]) #receipt-status`);
    await page.waitForFunction((want) => {
      const s = document.querySelector('#receipt-status');
      return document.querySelector('#receipt').dataset.id === want && s && s.textContent !== '';
    }, id);
    const status = await page.textContent('#receipt-status');
    const gates = await page.$$eval('#gates tr.gate', (rows) => rows.map((r) => ({
      name: r.dataset.gate, verdict: r.querySelector('.verdict').textContent,
    })));
    const position = await page.$$eval('#receipt-body dl dt', (dts) => dts.map((d) => d.textContent));
    return { id, status, gates, position };
  };
  const passed = await readReceipt('passed', args.pass);
  await shot('4-receipt-passed.png');
  await page.click('#receipt-close');
  const failed = await readReceipt('failed', args.fail);
  await shot('5-receipt-failed.png');
  const chain = await page.textContent('#chain');
  stage('done', { passed, failed, chain, foreign });
  await context.close();
  rmSync(profile, { recursive: true, force: true });
} catch (err) {
  console.error(`browser test failed: ${err.stack || err}`);
  if (page) {
    try {
      await page.screenshot({ path: join(args.out, 'failure.png'), fullPage: true });
      console.error(`page text at failure:\n${await page.innerText('body')}`);
    } catch (e) {
      console.error(`(no page text: ${e.message})`);
    }
  }
  if (context) await context.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  process.exit(1);
}
