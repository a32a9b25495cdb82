import { describe, expect, it } from 'vitest';
import {
  headerCheck,
  MAX_REMEMBERED_HEADER_PAIRS,
  mcpHostAllowList,
  refusedHeaders,
} from '../../src/gateway/host-check.js';

describe('mcpHostAllowList', () => {
  it('defaults to the loopback names and the HAY_API_URL host when bound to loopback', () => {
    const l = mcpHostAllowList({
      listenHost: '127.0.0.1',
      apiUrl: 'https://Hay.Example.com:8443/x',
      allowedHosts: [],
      allowedOrigins: [],
    });
    expect(l.hosts).toEqual(expect.arrayContaining(['localhost', '127.0.0.1', '[::1]', 'hay.example.com']));
    expect(l.origins).toEqual(l.hosts);
  });

  it('defaults to the listen name only (no localhost) when bound to one other address', () => {
    const l = mcpHostAllowList({
      listenHost: '10.1.2.3',
      apiUrl: undefined,
      allowedHosts: [],
      allowedOrigins: [],
    });
    expect(l.hosts).toEqual(['10.1.2.3']);
    expect(refusedHeaders(l, 'localhost:3000', undefined)).toMatch(/Invalid Host: localhost/);
    expect(refusedHeaders(l, '10.1.2.3:3000', undefined)).toBeUndefined();
  });

  it('takes configured names (ports and schemes dropped) and * as "any"', () => {
    const l = mcpHostAllowList({
      listenHost: '127.0.0.1',
      apiUrl: undefined,
      allowedHosts: ['mcp.example.com:443', '*'],
      allowedOrigins: ['https://app.example.com', 'mcp.example.com'],
    });
    expect(l.hosts).toBe('any');
    expect(l.origins).toEqual(['app.example.com', 'mcp.example.com']);
    expect(refusedHeaders(l, 'anything', 'https://app.example.com')).toBeUndefined();
    expect(refusedHeaders(l, 'anything', 'https://evil.example')).toMatch(/Invalid Origin: evil.example/);
    expect(refusedHeaders(l, undefined, undefined)).toBeUndefined();
  });

  it('refuses a missing Host when the check is on', () => {
    const l = mcpHostAllowList({
      listenHost: '::1',
      apiUrl: undefined,
      allowedHosts: [],
      allowedOrigins: [],
    });
    expect(l.hosts).toContain('[::1]');
    expect(refusedHeaders(l, undefined, undefined)).toMatch(/Missing Host/);
  });
});

describe('headerCheck', () => {
  it('answers as refusedHeaders for every pair, asked again, and past its memory bound', () => {
    const l = mcpHostAllowList({
      listenHost: '127.0.0.1',
      apiUrl: undefined,
      allowedHosts: [],
      allowedOrigins: ['https://app.example.com'],
    });
    const check = headerCheck(l);
    const pairs: [string | undefined, string | undefined][] = [
      ['localhost:3000', undefined],
      ['localhost:3000', ''],
      ['evil.example', undefined],
      [undefined, undefined],
      ['', undefined],
      ['localhost', 'https://app.example.com'],
      ['localhost', 'https://evil.example'],
      [`localhost:3000${'x'.repeat(600)}`, undefined],
    ];
    for (let i = 0; i < MAX_REMEMBERED_HEADER_PAIRS + 10; i++) pairs.push([`h${i}.example`, undefined]);
    for (let round = 0; round < 2; round++)
      for (const [host, origin] of pairs) expect(check(host, origin)).toBe(refusedHeaders(l, host, origin));
    expect(check('localhost:3000', undefined)).toBeUndefined();
    expect(check('evil.example', undefined)).toMatch(/Invalid Host/);
  });
});
