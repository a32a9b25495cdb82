import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { createLogger, wantsPrettyLogs } from '../../src/logger.js';

function capture(pretty: boolean): { text: () => string; logger: ReturnType<typeof createLogger> } {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  return { text: () => text, logger: createLogger({ level: 'info', destination: out, pretty }) };
}

describe('log format', () => {
  it('pretty: one readable line per entry, secrets still redacted', () => {
    const { text, logger } = capture(true);
    logger.info({ orgId: 'org-1', token: 'hunter2-secret' }, 'plugin process started');
    expect(text()).toMatch(/INFO.*plugin process started/);
    expect(text()).toContain('org-1');
    expect(text()).not.toContain('hunter2-secret');
    expect(text().trimStart().startsWith('{')).toBe(false);
  });

  it('json otherwise', () => {
    const { text, logger } = capture(false);
    logger.info({ token: 'hunter2-secret' }, 'hello');
    expect(JSON.parse(text())).toMatchObject({ msg: 'hello', token: '[redacted]' });
  });

  it('auto means pretty only on a terminal; HAY_LOG_FORMAT chooses', () => {
    expect(wantsPrettyLogs('auto', { isTTY: true })).toBe(true);
    expect(wantsPrettyLogs('auto', { isTTY: false })).toBe(false);
    expect(wantsPrettyLogs('json', { isTTY: true })).toBe(false);
    expect(wantsPrettyLogs('pretty', { isTTY: false })).toBe(true);
    expect(loadConfig({ HAY_LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(() => loadConfig({ HAY_LOG_FORMAT: 'xml' })).toThrow(
      /HAY_LOG_FORMAT must be one of auto, json, pretty/,
    );
  });
});
