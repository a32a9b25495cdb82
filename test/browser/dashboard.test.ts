/// <reference lib="dom" />
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import axe from 'axe-core';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startTestHost, type PluginFiles, type TestHost } from '../helpers/host.js';
import { buildZip } from '../helpers/zip-writer.js';

/**
 * The dashboard in a real browser (Debian chromium driven by playwright-core) against a real host: the
 * journeys of issue 16, XSS payloads rendered inert, CSRF, cookie flags, CSP, and axe-core on each page.
 * Screenshots go to test-artifacts/screenshots/ (gitignored).
 */
const CHROMIUM = '/usr/bin/chromium';
const DIST = path.join(REPO_ROOT, 'web', 'dist', 'index.html');
/** A regular file: a path masked by a bind mount of /dev/null (how "not installed" is simulated) is missing too. */
const isFile = (p: string) => existsSync(p) && statSync(p).isFile();
const missing = !isFile(CHROMIUM)
  ? `${CHROMIUM} is missing (apt-get install chromium)`
  : !existsSync(DIST)
    ? 'web/dist is not built (npm run build:web)'
    : undefined;
const SHOTS = path.join(REPO_ROOT, 'test-artifacts', 'screenshots');

const SERVER = `import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
const server = new McpServer({ name: 'demo', version: '1.0.0' });
server.registerTool('greet', { description: 'Greets', inputSchema: { name: z.string(), loud: z.boolean().optional() } },
  async ({ name, loud }) => {
    const text = (process.env.DEMO_GREETING ?? 'Hi') + ', ' + name + (loud ? '!' : '') + ' token:' + (process.env.DEMO_TOKEN ? 'yes' : 'no');
    process.stderr.write('greeted ' + name + ' with token ' + (process.env.DEMO_TOKEN ?? '') + '\\n');
    return { content: [{ type: 'text', text }], structuredContent: { text } };
  });
server.registerTool('fail', { description: 'Always fails', inputSchema: {} },
  async () => ({ isError: true, content: [{ type: 'text', text: 'it broke on purpose' }] }));
await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
`;

const pkg = (name: string) => ({
  name,
  version: '1.0.0',
  private: true,
  type: 'module',
  peerDependencies: { '@modelcontextprotocol/sdk': '^1.32.0', zod: '^4.0.0' },
});

const DEMO: PluginFiles = {
  'package.json': pkg('dash-demo'),
  'mcp/index.js': SERVER,
  'README.md': '# Demo\n\nGreets **people**. See [docs](https://example.com/docs).\n\n- one\n- two\n',
  'manifest.json': {
    id: 'dash-demo',
    name: 'Dashboard Demo',
    version: '1.0.0',
    description: 'A retriever for the dashboard suite',
    type: ['retriever'],
    marketplace: { category: 'testing', tags: ['demo'] },
    configSchema: {
      greeting: { type: 'string', label: 'Greeting', required: true, env: 'DEMO_GREETING' },
      apiToken: { type: 'string', label: 'API token', required: true, encrypted: true, env: 'DEMO_TOKEN' },
      mode: { type: 'select', options: ['fast', 'slow'], default: 'fast' },
    },
    capabilities: {
      mcp: {
        connection: { type: 'local' },
        transport: 'stdio',
        startCommand: 'node mcp/index.js',
        tools: [
          {
            name: 'greet',
            description: 'Greets',
            input_schema: {
              type: 'object',
              properties: { name: { type: 'string' }, loud: { type: 'boolean' } },
              required: ['name'],
            },
          },
          { name: 'fail', description: 'Always fails', input_schema: { type: 'object', properties: {} } },
        ],
      },
    },
  },
};

const XSS = '<img src=x onerror="window.__pwned=1;alert(1)"><script>window.__pwned=2;alert(2)</script>';
const XSS_PLUGIN: PluginFiles = {
  'package.json': pkg('xss-demo'),
  'mcp/index.js': SERVER,
  'README.md': `# ${XSS}\n\n${XSS}\n\n[click](javascript:window.__pwned=3) [data](data:text/html,<script>alert(4)</script>)\n\n<iframe src="javascript:alert(5)"></iframe>\n`,
  'manifest.json': {
    id: 'xss-demo',
    name: `Evil ${XSS}`,
    version: '1.0.0',
    description: `desc ${XSS}`,
    type: ['channel'],
    icon: 'javascript:alert(6)',
    marketplace: { category: `<b>cat</b>`, tags: ['<svg onload=alert(7)>'] },
    capabilities: {
      mcp: {
        connection: { type: 'local' },
        transport: 'stdio',
        startCommand: 'node mcp/index.js',
        tools: [
          {
            name: 'greet',
            description: `tool ${XSS}`,
            input_schema: {
              type: 'object',
              properties: { name: { type: 'string', title: XSS, description: XSS, enum: [XSS, 'ok'] } },
            },
          },
        ],
      },
    },
  },
};

describe.skipIf(missing !== undefined)(
  `dashboard in chromium${missing ? ` (skipped: ${missing})` : ''}`,
  () => {
    let t: TestHost;
    let org: { organizationId: string; apiKey: string };
    let browser: Browser;
    let context: BrowserContext;
    let page: Page;
    const dialogs: string[] = [];
    let api: http.Server;
    let apiPort = 0;
    let catalogDir = '';

    beforeAll(async () => {
      mkdirSync(SHOTS, { recursive: true });
      // the live endpoint of the no-code plugin
      api = http.createServer((req, res) => {
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify({ data: { item: req.url, key: req.headers['x-api-key'] ?? null } }));
      });
      await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
      apiPort = (api.address() as AddressInfo).port;
      // the bundled server-memory entry plus a remote entry (installing writes files only; nothing connects)
      catalogDir = mkdtempSync(path.join(os.tmpdir(), 'hay-dash-catalog-'));
      copyFileSync(
        path.join(REPO_ROOT, 'catalog', 'server-memory.json'),
        path.join(catalogDir, 'server-memory.json'),
      );
      writeFileSync(
        path.join(catalogDir, 'dash-remote.json'),
        JSON.stringify({
          name: 'io.example/dash-remote',
          title: 'Dash Remote',
          description: 'A remote MCP server from the catalog.',
          version: '1.0.0',
          remotes: [
            {
              type: 'streamable-http',
              url: `http://127.0.0.1:${apiPort}/mcp`,
              headers: [{ name: 'X-Api-Key', description: 'Key', isRequired: true, isSecret: true }],
            },
          ],
          _meta: { 'chat.hay/marketplace': { category: 'testing', tags: ['remote'] } },
        }),
      );
      t = await startTestHost({
        corePlugins: [],
        plugins: { 'core/dash-demo': DEMO, 'core/xss-demo': XSS_PLUGIN },
        config: {
          analyticsFlushIntervalMs: 200,
          egressAllow: `127.0.0.1:${apiPort}`,
          catalogPath: catalogDir,
        },
      });
      org = await t.createOrganization('browser-org');
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        chromiumSandbox: false,
        args: [
          '--disable-gpu',
          '--disable-quic',
          '--disable-background-networking',
          '--disable-component-update',
          '--disable-sync',
          '--no-first-run',
        ],
      });
      context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
      page = await context.newPage();
      page.on('dialog', (d) => {
        dialogs.push(d.message());
        void d.dismiss();
      });
    }, 120_000);

    afterAll(async () => {
      await browser?.close();
      await t?.close();
      if (catalogDir) rmSync(catalogDir, { recursive: true, force: true });
    });

    /** axe-core in the page (evaluated through the DevTools protocol, which the page's CSP does not cover). */
    async function checkA11y(name: string) {
      await page.evaluate(axe.source);
      const violations = await page.evaluate(async () => {
        const w = window as unknown as {
          axe: {
            run(
              ctx: Document,
              o: object,
            ): Promise<{ violations: { id: string; impact: string; nodes: unknown[] }[] }>;
          };
        };
        const r = await w.axe.run(document, { resultTypes: ['violations'] });
        return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length }));
      });
      const serious = violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
      expect(serious, `${name}: ${JSON.stringify(serious)}`).toEqual([]);
    }

    const shot = (name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
    const nav = (label: string) =>
      page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label }).click();

    it('signs in from the keyboard; CSP and cookie flags; CSRF enforced in the browser', async () => {
      const res = await page.goto(t.url);
      const headers = res?.headers() ?? {};
      expect(headers['content-security-policy']).toContain("script-src 'self'");
      expect(headers['x-content-type-options']).toBe('nosniff');
      await page.getByLabel('API key or admin token').waitFor();
      await checkA11y('sign-in');
      await shot('sign-in');
      // keyboard only: Tab to the field, type, Enter submits
      await page.keyboard.press('Tab'); // skip link
      await page.keyboard.press('Tab'); // brand
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => document.activeElement?.id)).toBe('sign-in-token');
      await page.keyboard.type(org.apiKey);
      await page.keyboard.press('Enter');
      await page.getByRole('heading', { name: 'Marketplace' }).waitFor();

      const cookie = (await context.cookies()).find((c) => c.name === 'hay_session');
      expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict', secure: false, path: '/' });
      expect(await page.evaluate(() => document.cookie)).not.toContain('hay_session');
      // the cookie alone (what a forged request carries) is refused; with the page's token it works
      const statuses = await page.evaluate(async () => {
        const bare = await fetch('/trpc/plugins.list');
        const forged = await fetch('/trpc/plugins.disable', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ pluginId: 'dash-demo' }),
        });
        return [bare.status, forged.status];
      });
      expect(statuses).toEqual([403, 403]);
    });

    it('lists and filters the marketplace by type', async () => {
      const cards = page.locator('.plugin-card');
      await expect.poll(() => cards.count()).toBe(2);
      await checkA11y('marketplace');
      await shot('marketplace');
      await page.getByLabel('Type').selectOption('retriever');
      await expect.poll(() => cards.count()).toBe(1);
      expect(await cards.first().getAttribute('data-plugin-id')).toBe('dash-demo');
      await expect.poll(() => cards.first().locator('.state').textContent()).toBe('available');
      await page.getByLabel('Type').selectOption('channel');
      expect(await cards.first().getAttribute('data-plugin-id')).toBe('xss-demo');
      await page.getByLabel('Type').selectOption('');
      await page.getByLabel('Search').fill('retriever for the dashboard');
      await expect.poll(() => cards.count()).toBe(1);
      await page.getByLabel('Search').fill('');
    });

    it('enables and configures a plugin with a secret, then tries its tools', async () => {
      await page.getByRole('link', { name: 'Dashboard Demo' }).click();
      await page.getByRole('heading', { name: 'Dashboard Demo', level: 1 }).waitFor();
      expect(await page.locator('.secret-marker').textContent()).toContain('not set');
      await page.getByLabel(/^Greeting/).fill('Hello');
      await page.getByLabel(/^API token/).fill('sekret-value-123');
      await page.getByRole('button', { name: 'Enable with this configuration' }).click();
      await page.getByText('Plugin enabled').waitFor();
      await expect.poll(() => page.locator('.secret-marker').textContent()).toContain('secret: set');
      expect(await page.content()).not.toContain('sekret-value-123');
      expect(await page.getByLabel(/^API token/).inputValue()).toBe('');

      await page.getByLabel(/^name/).fill('Ada');
      await page.getByLabel(/^loud/).check();
      await page.getByRole('button', { name: 'Run greet' }).click();
      const ok = page.locator('.tool-result.is-ok');
      await ok.waitFor({ timeout: 20_000 });
      expect(await ok.textContent()).toContain('Hello, Ada! token:yes');
      expect(await ok.textContent()).toMatch(/in \d+ ms/);
      expect(await ok.textContent()).toContain('Structured content');

      await page.getByRole('button', { name: 'Run fail' }).click();
      const bad = page.locator('.tool-result.is-error');
      await bad.waitFor();
      expect(await bad.textContent()).toContain('Tool error (isError)');
      expect(await bad.textContent()).toContain('it broke on purpose');
      // the org's own stderr lines, as text, with the secret redacted
      const log = page.getByLabel('Last stderr lines');
      await expect
        .poll(
          async () => {
            await page.getByRole('button', { name: 'Refresh log' }).click();
            return (await log.count()) > 0 ? await log.textContent() : '';
          },
          { timeout: 10_000 },
        )
        .toContain('greeted Ada with token [redacted]');
      expect(await log.textContent()).not.toContain('sekret-value-123');
      await checkA11y('plugin');
      await shot('plugin');
    });

    it('finds the call in analytics and in the audit log (and exports CSV)', async () => {
      await nav('Analytics');
      const row = page.locator('tr[data-tool="dash-demo/greet"]');
      await expect
        .poll(
          async () => {
            if ((await row.count()) === 0) await page.getByRole('button', { name: 'Refresh' }).click();
            return row.count();
          },
          { timeout: 15_000, interval: 500 },
        )
        .toBe(1);
      expect(await row.locator('td').nth(2).textContent()).toBe('1');
      expect(await page.locator('.chart svg rect.bar-calls').count()).toBeGreaterThan(0);
      expect(await page.locator('.chart svg polyline.line-p95').count()).toBe(1);
      expect(await page.getByRole('columnheader', { name: 'p95' }).count()).toBeGreaterThan(0);
      expect(await row.locator('td').nth(7).textContent()).toMatch(/^\d+ ms$/);
      await checkA11y('analytics');
      await shot('analytics');

      await nav('Audit log');
      await page.getByLabel('Action').selectOption('tool.invoke');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      const rows = page.locator('tr[data-action="tool.invoke"]');
      await expect.poll(() => rows.count()).toBe(2);
      expect(await rows.first().textContent()).toContain('dash-demo');
      await page.getByLabel('Outcome').selectOption('ok');
      await page.getByRole('button', { name: 'Apply filters' }).click();
      await expect.poll(() => rows.count()).toBe(1);
      const download = page.waitForEvent('download');
      await page.getByRole('button', { name: 'Export CSV' }).click();
      const file = await download;
      const stream = await file.createReadStream();
      let csv = '';
      for await (const chunk of stream) csv += String(chunk);
      expect(csv.split('\r\n')[0]).toBe('id,at,organizationId,actor,action,pluginId,outcome,details');
      expect(csv).toContain('tool.invoke');
      await checkA11y('audit');
      await shot('audit');
    });

    it('shows instances with usage', async () => {
      await nav('Instances');
      await page.locator('table').getByText('dash-demo').first().waitFor();
      const row = page.locator('tbody tr').first();
      expect(await row.locator('td').nth(4).textContent()).toMatch(/\d+(\.\d)? (KB|MB)/);
      await checkA11y('instances');
      await shot('instances');
      const pid = await row.locator('td').nth(3).textContent();
      await page.getByRole('button', { name: 'Restart dash-demo' }).click();
      await expect
        .poll(
          async () => [
            await row.locator('td').nth(2).textContent(),
            await row.locator('td').nth(3).textContent(),
          ],
          {
            timeout: 15_000,
          },
        )
        .toEqual(['running', expect.not.stringMatching(`^${pid ?? ''}$`)]);
      await page.getByRole('button', { name: 'Stop dash-demo' }).click();
      await expect
        .poll(() => page.locator('tbody tr td:nth-child(3)').allTextContents())
        .not.toContain('running');
    });

    it('shows an upload validation error per file and JSON pointer', async () => {
      await nav('Upload');
      const zip = buildZip([
        {
          name: 'manifest.json',
          data: JSON.stringify({ id: 'bad-upload', name: 'Bad', version: '1.0.0', type: ['bogus'] }),
        },
      ]);
      await page
        .getByLabel('Plugin ZIP')
        .setInputFiles({ name: 'bad.zip', mimeType: 'application/zip', buffer: zip });
      await page.getByRole('button', { name: 'Upload' }).click();
      const problems = page.locator('table.problems');
      await problems.waitFor();
      expect(await problems.textContent()).toContain('manifest.json');
      expect(await problems.textContent()).toContain('/type/0');
      await checkA11y('upload');
      await shot('upload');
    });

    it('renders plugin-provided strings inert (XSS)', async () => {
      await nav('Marketplace');
      await page.locator('.plugin-card[data-plugin-id="xss-demo"]').waitFor();
      await page.locator('.plugin-card[data-plugin-id="xss-demo"] h2 a').click();
      await page.locator('.markdown').waitFor();
      const probe = await page.evaluate(() => ({
        pwned: (window as unknown as { __pwned?: unknown }).__pwned,
        scripts: document.querySelectorAll('script').length,
        handlers: document.querySelectorAll('[onerror],[onload]').length,
        injected: document.querySelectorAll('img[src="x"], iframe, svg[onload], main script, b').length,
        jsLinks: document.querySelectorAll(
          'a[href^="javascript:"], a[href^="data:"], img[src^="javascript:"]',
        ).length,
        text: document.body.innerText,
      }));
      expect(probe).toMatchObject({ pwned: undefined, scripts: 1, handlers: 0, injected: 0, jsLinks: 0 });
      expect(probe.text).toContain('<script>window.__pwned=2;alert(2)</script>');
      expect(probe.text).toContain('desc <img src=x onerror=');
      await page.getByText('Input schema').click();
      expect(await page.locator('.tool pre').first().textContent()).toContain('<img src=x onerror=');
      expect(dialogs).toEqual([]);
      await shot('xss');
    });

    it('builds a no-code plugin through the form: a bad reference at its field, a test call, save, then its tool runs', async () => {
      await nav('Builder');
      await page.getByLabel('Plugin id').fill('nocode-items');
      await page.getByLabel('Plugin name').fill('No-code items');
      await page.getByLabel('Plugin description').fill('Items from the suite server');
      await page.getByRole('button', { name: 'Add configuration field' }).click();
      await page.getByLabel('Configuration field 1 name').fill('apiKey');
      await page.getByLabel('Secret (stored encrypted)').check();
      await page.getByLabel('Tool name').fill('get_item');
      await page.getByLabel('Tool description').fill('One item');
      await page.getByLabel('Method').selectOption('GET');
      const url = page.getByLabel('URL template');
      await url.fill(`http://127.0.0.1:${apiPort}/items/{{params.nope}}`);
      await page.getByRole('button', { name: 'Add parameter to tool 1' }).click();
      await page.getByLabel('Parameter 1 name').fill('id');
      // keyboard: Tab from the name reaches the type select, then the Required checkbox
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Space');
      expect(await page.locator('#b-tools-0-parameters-0-required').isChecked()).toBe(true);
      await page.getByRole('button', { name: 'Add header to tool 1' }).click();
      await page.getByLabel('Header 1 name').fill('X-Api-Key');
      await page.getByLabel('Header 1 value template').fill('{{config.apiKey}}');
      await page.getByLabel('Response', { exact: true }).selectOption('json');
      await page.getByLabel('JSON pointer into the response (optional)').fill('/data');
      expect(await page.locator('#b-tools-0-refs').textContent()).toContain(
        '{{config.apiKey}}, {{params.id}}',
      );

      await page.getByRole('button', { name: 'Save plugin' }).click();
      // the server's problem is shown at the URL field, which is marked invalid and described by it
      const urlProblem = page.locator('#b-tools-0-url ~ .field-problems');
      await urlProblem.waitFor();
      expect(await urlProblem.textContent()).toContain('{{params.nope}}');
      expect(await url.getAttribute('aria-invalid')).toBe('true');
      expect(await page.locator('table.problems').count()).toBe(0);
      await checkA11y('builder-problems');

      await url.fill(`http://127.0.0.1:${apiPort}/items/{{params.id}}`);
      await page.getByLabel('Test value of apiKey').fill('k-123');
      await page.getByLabel(/^id/).fill('abc');
      await page.getByRole('button', { name: 'Test get_item' }).click();
      const result = page.locator('.builder-test .tool-result.is-ok');
      await result.waitFor({ timeout: 20_000 });
      expect(await result.textContent()).toContain('/items/abc');
      expect(await result.textContent()).toContain('k-123');
      expect(await page.locator('.builder-test').textContent()).toContain('HTTP status: 200');
      expect(await page.locator('.field-problems').count()).toBe(0);

      // the advanced JSON view shows the same definition, and edits there reach the form
      await page.getByLabel('Advanced: show the definition as JSON').check();
      const json = page.getByLabel('Definition (JSON)');
      const def = JSON.parse(await json.inputValue()) as {
        config: unknown[];
        tools: { headers: unknown; parameters: unknown[]; response: unknown }[];
      };
      expect(def.config).toEqual([{ name: 'apiKey', type: 'string', encrypted: true }]);
      expect(def.tools[0]?.headers).toEqual({ 'X-Api-Key': '{{config.apiKey}}' });
      expect(def.tools[0]?.parameters).toEqual([{ name: 'id', type: 'string', required: true }]);
      expect(def.tools[0]?.response).toEqual({ kind: 'json', pointer: '/data' });
      // a problem no field of the form stands for is listed at the top
      await json.fill(JSON.stringify({ ...def, format: 2 }));
      await page.getByRole('button', { name: 'Save plugin' }).click();
      const unmatched = page.locator('table.problems');
      await unmatched.waitFor();
      expect(await unmatched.textContent()).toContain('/format');
      await json.fill(JSON.stringify({ ...def, name: 'No-code items' }));
      expect(await page.getByLabel('Plugin name').inputValue()).toBe('No-code items');
      await checkA11y('builder');
      await shot('builder');

      await page.getByRole('button', { name: 'Save plugin' }).click();
      await page
        .getByRole('status')
        .getByText(/^Saved nocode-items/)
        .waitFor();
      await page.getByRole('status').getByRole('link', { name: 'nocode-items' }).click();
      await page.getByRole('heading', { name: 'No-code items', level: 1 }).waitFor();
      await page.getByLabel(/^apiKey/).fill('k-456');
      await page.getByRole('button', { name: 'Enable with this configuration' }).click();
      await page.getByText('Plugin enabled').waitFor();
      await page.getByLabel(/^id/).fill('xyz');
      await page.getByRole('button', { name: 'Run get_item' }).click();
      const ran = page.locator('.tool-result.is-ok');
      await ran.waitFor({ timeout: 30_000 });
      expect(await ran.textContent()).toContain('/items/xyz');
      expect(await ran.textContent()).toContain('k-456');
    });

    it('lists catalog entries with a catalog badge; installing one opens its plugin page', async () => {
      await nav('Marketplace');
      const memory = page.locator(
        '.catalog-card[data-catalog-name="io.github.modelcontextprotocol/server-memory"]',
      );
      await memory.waitFor();
      expect(await memory.locator('.state').textContent()).toBe('catalog');
      expect(await memory.locator('h3').textContent()).toBe('Knowledge Graph Memory');
      await memory.getByRole('button', { name: 'Install Knowledge Graph Memory (local)' }).waitFor();
      // the type filter (plugin types) hides catalog entries; search reaches them
      await page.getByLabel('Search').fill('remote mcp server');
      await expect.poll(() => page.locator('.catalog-card').count()).toBe(1);
      await checkA11y('marketplace-catalog');
      await shot('marketplace-catalog');
      await page.getByRole('button', { name: 'Install Dash Remote (remote)' }).click();
      await page.getByRole('heading', { name: 'Dash Remote', level: 1 }).waitFor();
      expect(page.url()).toContain('/plugins/');
      await page.getByLabel(/^X-Api-Key/).waitFor();
      // installed now: listed as a plugin, no longer as a catalog entry
      await nav('Marketplace');
      await page.locator('.plugin-card', { hasText: 'Dash Remote' }).waitFor();
      expect(await page.locator('.catalog-card[data-catalog-name="io.example/dash-remote"]').count()).toBe(0);
    });

    it('signs out, then the admin token opens the admin page', async () => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('API key or admin token').waitFor();
      expect((await context.cookies()).find((c) => c.name === 'hay_session')).toBeUndefined();
      expect(await page.evaluate(async () => (await fetch('/trpc/plugins.list')).status)).toBe(401);

      await page.getByLabel('API key or admin token').fill(t.adminToken);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.getByRole('heading', { name: 'Admin', level: 1 }).waitFor();
      await page.locator('pre.health').getByText('"database"', { exact: false }).waitFor();
      await page.getByText('browser-org').click();
      await page.getByRole('button', { name: 'Create key' }).click();
      await page.getByText('New key (shown once)').waitFor();
      await checkA11y('admin');
      await shot('admin');
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.getByLabel('API key or admin token').waitFor();
      expect(dialogs).toEqual([]);
    });
  },
);
