import { describe, expect, it } from 'vitest';
import { deniedRange, embeddedV4, formatIp, parseIp } from '../../src/egress/address.js';
import { EgressPolicy, parseAllowList, type Resolver } from '../../src/egress/policy.js';
import { EgressError } from '../../src/errors.js';

const all = { hosts: 'all' as const, label: 'plugin p' };

describe('address ranges', () => {
  it.each([
    '127.0.0.1',
    '127.255.1.2',
    '10.1.2.3',
    '172.16.0.1',
    '172.31.255.255',
    '192.168.1.1',
    '169.254.169.254',
    '100.64.0.1',
    '0.0.0.0',
    '224.0.0.1',
    '255.255.255.255',
    '::1',
    '::',
    'fe80::1',
    'fc00::1',
    'fd12:3456::1',
    'ff02::1',
    '::ffff:127.0.0.1',
    '::ffff:7f00:1',
    '::ffff:169.254.169.254',
    '::ffff:a9fe:a9fe',
    '::127.0.0.1',
    '64:ff9b::a9fe:a9fe',
    '2002:7f00:1::1',
    '0:0:0:0:0:ffff:10.0.0.1',
  ])('denies %s', (ip) => {
    const bytes = parseIp(ip);
    expect(bytes).toBeDefined();
    expect(deniedRange(bytes!)).toBeDefined();
  });

  it.each(['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700::1111', '::ffff:8.8.8.8'])(
    'allows %s',
    (ip) => {
      expect(deniedRange(parseIp(ip)!)).toBeUndefined();
    },
  );

  it('parses and formats', () => {
    expect(parseIp('not-an-ip')).toBeUndefined();
    expect(parseIp('1.2.3')).toBeUndefined();
    expect(formatIp(parseIp('::ffff:127.0.0.1')!)).toBe('::ffff:7f00:1');
    expect(formatIp(embeddedV4(parseIp('::ffff:127.0.0.1')!)!)).toBe('127.0.0.1');
    expect(embeddedV4(parseIp('::1')!)).toBeUndefined();
  });
});

describe('operator allow-list', () => {
  it('parses CIDRs, addresses, hosts and ports', () => {
    const entries = parseAllowList('10.0.0.0/8, 127.0.0.1:4010 [::1]:8080 wiki.internal:443 fd00::/8');
    expect(entries.map((e) => [e.kind, e.port])).toEqual([
      ['cidr', undefined],
      ['cidr', 4010],
      ['cidr', 8080],
      ['host', 443],
      ['cidr', undefined],
    ]);
  });

  it.each(['10.0.0.0/33', 'host!', '127.0.0.1:99999', '1.2.3.4:x'])('rejects %s', (entry) => {
    expect(() => parseAllowList(entry)).toThrow(JSON.stringify(entry));
  });
});

describe('EgressPolicy', () => {
  const resolver =
    (map: Record<string, string[]>): Resolver =>
    (host) =>
      Promise.resolve(
        (map[host] ?? []).map((address) => ({ address, family: address.includes(':') ? 6 : 4 })),
      );

  it('refuses loopback, metadata and private literals with a clear error', async () => {
    const policy = new EgressPolicy({ allow: [] });
    for (const host of ['127.0.0.1', '169.254.169.254', '[::1]', '10.0.0.5', '[::ffff:127.0.0.1]']) {
      const err = await policy.resolve(host, 80, all).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EgressError);
      expect((err as EgressError).code).toBe('EGRESS_DENIED');
      expect((err as EgressError).message).toMatch(/^Egress denied: plugin p may not reach .* range/);
    }
  });

  it('checks the resolved address, not the name (a name resolving to loopback is refused)', async () => {
    const policy = new EgressPolicy({
      allow: [],
      resolve: resolver({ 'rebind.example': ['127.0.0.1'], 'public.example': ['93.184.216.34'] }),
    });
    await expect(policy.resolve('rebind.example', 443, all)).rejects.toThrow(
      'rebind.example resolves to 127.0.0.1:443',
    );
    await expect(policy.resolve('public.example', 443, all)).resolves.toMatchObject({
      address: '93.184.216.34',
    });
  });

  it('uses only allowed addresses of a mixed answer', async () => {
    const policy = new EgressPolicy({
      allow: [],
      resolve: resolver({ 'mixed.example': ['127.0.0.1', '93.184.216.34'] }),
    });
    await expect(policy.resolve('mixed.example', 80, all)).resolves.toMatchObject({
      address: '93.184.216.34',
    });
  });

  it('operator entries allow exactly what they name', async () => {
    const policy = new EgressPolicy({
      allow: parseAllowList('127.0.0.1:4010 wiki.internal'),
      resolve: resolver({ 'wiki.internal': ['10.1.2.3'] }),
    });
    await expect(policy.resolve('127.0.0.1', 4010, all)).resolves.toMatchObject({ address: '127.0.0.1' });
    await expect(policy.resolve('127.0.0.1', 4011, all)).rejects.toThrow(EgressError);
    await expect(policy.resolve('wiki.internal', 80, all)).resolves.toMatchObject({ address: '10.1.2.3' });
  });

  it('enforces manifest hosts before resolving', async () => {
    let resolved = 0;
    const policy = new EgressPolicy({
      allow: [],
      resolve: (h) => {
        resolved++;
        return resolver({ 'api.example.com': ['93.184.216.34'], 'eu.api.example.com': ['93.184.216.35'] })(h);
      },
    });
    const rules = { hosts: ['api.example.com:443', '*.api.example.com'], label: 'plugin p' };
    await expect(policy.resolve('api.example.com', 443, rules)).resolves.toBeDefined();
    await expect(policy.resolve('eu.api.example.com', 8443, rules)).resolves.toBeDefined();
    await expect(policy.resolve('api.example.com', 80, rules)).rejects.toThrow(
      'it is not in permissions.network.hosts',
    );
    await expect(policy.resolve('evil.com', 443, rules)).rejects.toThrow('may not reach evil.com:443');
    expect(resolved).toBe(2);
  });

  it('reuses a resolution for dnsCacheMs, still checks the cached address, and never caches failures', async () => {
    let t = 0;
    const asked: string[] = [];
    let answer: Record<string, string[]> = {
      'api.example.com': ['93.184.216.34'],
      'rebind.example': ['127.0.0.1'],
      'flaky.example': ['93.184.216.50'],
    };
    const policy = new EgressPolicy({
      allow: [],
      dnsCacheMs: 1_000,
      dnsCacheEntries: 2,
      now: () => t,
      resolve: (h) => {
        asked.push(h);
        if (h === 'flaky.example' && asked.filter((x) => x === h).length === 1)
          return Promise.reject(Object.assign(new Error('temporary'), { code: 'EAI_AGAIN' }));
        return resolver(answer)(h);
      },
    });
    // 100 requests, concurrent and sequential, one lookup
    await Promise.all(Array.from({ length: 50 }, () => policy.resolve('api.example.com', 443, all)));
    for (let i = 0; i < 50; i++) await policy.resolve('api.example.com', 443, all);
    expect(asked).toEqual(['api.example.com']);
    // a cached answer in a denied range is refused on every use
    for (let i = 0; i < 3; i++)
      await expect(policy.resolve('rebind.example', 443, all)).rejects.toThrow('resolves to 127.0.0.1');
    expect(asked.filter((h) => h === 'rebind.example')).toHaveLength(1);
    // expiry: a name that now resolves elsewhere is looked up again
    answer = { ...answer, 'api.example.com': ['93.184.216.99'] };
    t = 1_000;
    await expect(policy.resolve('api.example.com', 443, all)).resolves.toMatchObject({
      address: '93.184.216.99',
    });
    // failures are retried at once
    await expect(policy.resolve('flaky.example', 443, all)).rejects.toThrow('cannot resolve flaky.example');
    await expect(policy.resolve('flaky.example', 443, all)).resolves.toMatchObject({
      address: '93.184.216.50',
    });
    expect(asked.filter((h) => h === 'flaky.example')).toHaveLength(2);
    // bounded: at most dnsCacheEntries names; the oldest (rebind.example) was dropped for flaky.example
    await expect(policy.resolve('rebind.example', 443, all)).rejects.toThrow(EgressError);
    expect(asked.filter((h) => h === 'rebind.example')).toHaveLength(2);
    await policy.resolve('api.example.com', 443, all);
    expect(asked.filter((h) => h === 'api.example.com')).toHaveLength(3);
  });
});
