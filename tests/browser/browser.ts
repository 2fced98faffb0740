// The browser the portal tests drive: Debian's chromium through playwright-core, headless, with nothing that reaches
// out (the machine's network is closed; background services would only fail). Each test gets a fresh context.
// Three checks every page test uses: no script a test planted ever ran (a binding the payloads call, dialogs,
// CSP violations), axe-core finds no serious or critical violation, and a screenshot kept as an artefact.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import axe from 'axe-core';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.SMGW_CHROMIUM ?? '/usr/bin/chromium';

/** Where screenshots go (`.smgw/artifacts/portal/`, kept by CI with the logs). */
export const ARTIFACTS_DIR = join(process.env.SMGW_STATE_DIR ?? join(process.cwd(), '.smgw'), 'artifacts', 'portal');

export async function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/** What a page did that it never should: planted scripts that ran, dialogs, CSP violations (for the record). */
export interface ScriptWatch {
  /** Calls of the `__xss` binding that payloads invoke, from any frame. */
  ran: string[];
  dialogs: string[];
  cspViolations: string[];
}

/**
 * A context whose pages report any planted script: XSS payloads in the corpus call `__xss('<id>')` (or alert), so a
 * payload that executes in any frame, sandboxed or not, is recorded here.
 */
export async function watchedContext(browser: Browser): Promise<{ context: BrowserContext; watch: ScriptWatch }> {
  const context = await browser.newContext({ acceptDownloads: true, locale: 'de-DE' });
  const watch: ScriptWatch = { ran: [], dialogs: [], cspViolations: [] };
  await context.exposeBinding('__xss', (_source, id: unknown) => {
    watch.ran.push(String(id));
  });
  // Reported through the console (the page's own code, a string: this file is not compiled for the DOM).
  await context.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) =>
      console.warn('csp-violation ' + e.violatedDirective + ' ' + e.blockedURI));`,
  });
  context.on('page', (page) => watchPage(page, watch));
  return { context, watch };
}

function watchPage(page: Page, watch: ScriptWatch): void {
  page.on('dialog', (dialog) => {
    watch.dialogs.push(`${dialog.type()}: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('console', (message) => {
    if (message.text().startsWith('csp-violation ')) watch.cspViolations.push(message.text());
  });
}

/**
 * axe-core's serious and critical violations on the page (WCAG 2.1 A/AA rules), as readable lines. axe runs in the
 * top document only: the one frame our pages have is a message's sandboxed body (the sender's HTML, where no script
 * may run; @axe-core/playwright would wait for ever to inject itself there). The frame element itself is checked.
 */
export async function seriousAccessibilityViolations(page: Page): Promise<string[]> {
  await page.evaluate(axe.source);
  const violations = await page.evaluate(async () => {
    const inPage = globalThis as unknown as { axe: typeof axe; document: axe.ElementContext };
    const result = await inPage.axe.run(inPage.document, {
      iframes: false,
      runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] },
    });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact ?? null,
      help: v.help,
      targets: v.nodes.map((n) => n.target.join(' ')),
    }));
  });
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.targets.join(', ')})`);
}

/** A full-page screenshot under ARTIFACTS_DIR/<name>.png. */
export async function keepScreenshot(page: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const path = join(ARTIFACTS_DIR, `${name.replace(/[^a-z0-9-]+/gi, '-')}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}
