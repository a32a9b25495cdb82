import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalEgress, isNonPublicAddress, parseEgressAllow } from '../../src/events/egress.js';

describe('local egress policy', () => {
  it('classifies loopback, private, link-local, CGNAT, multicast and mapped addresses as non-public', () => {
    for (const a of [
      '127.0.0.1',
      '10.0.0.5',
      '172.16.3.4',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
    ])
      expect(isNonPublicAddress(a), a).toBe(true);
    for (const a of ['93.184.216.34', '1.1.1.1', '2606:4700:4700::1111', '::ffff:8.8.8.8'])
      expect(isNonPublicAddress(a), a).toBe(false);
  });

  it('resolves names and refuses one that points inside, unless the operator allowed it', async () => {
    const lookup = async (host: string) =>
      host === 'inside.example'
        ? [
            { address: '93.184.216.34', family: 4 },
            { address: '10.0.0.7', family: 4 },
          ]
        : [{ address: '93.184.216.34', family: 4 }];
    const egress = createLocalEgress({ allow: [], lookup });
    await expect(egress.checkUrl('https://inside.example/hook')).rejects.toThrow(
      'inside.example resolves to 10.0.0.7, which is not a public address',
    );
    await expect(egress.checkUrl('https://outside.example/hook')).resolves.toBeUndefined();
    await expect(egress.checkUrl('http://outside.example/hook')).rejects.toThrow(/plain http/);
    await expect(egress.checkUrl('https://127.0.0.1/')).rejects.toThrow(/not a public address/);
    await expect(egress.checkUrl('https://[::ffff:7f00:1]/')).rejects.toThrow(/not a public address/);
    await expect(egress.checkUrl('ftp://outside.example/')).rejects.toThrow(/ftp: URLs are not allowed/);
    await expect(egress.checkUrl('https://user:pw@outside.example/')).rejects.toThrow(/credentials/);
    const allowed = createLocalEgress({ allow: ['inside.example', '10.1.0.0/16'], lookup });
    await expect(allowed.checkUrl('https://inside.example/hook')).resolves.toBeUndefined();
    await expect(allowed.checkUrl('http://10.1.2.3/hook')).resolves.toBeUndefined();
    await expect(allowed.checkUrl('https://10.2.0.1/hook')).rejects.toThrow(/not a public address/);
  });

  it('parses HAY_EGRESS_ALLOW and names a bad entry', () => {
    expect(parseEgressAllow(' 127.0.0.1, 10.0.0.0/8 ,Hooks.Local ')).toEqual([
      '127.0.0.1',
      '10.0.0.0/8',
      'hooks.local',
    ]);
    expect(parseEgressAllow(undefined)).toEqual([]);
    expect(() => parseEgressAllow('127.0.0.1,bad host')).toThrow(
      'HAY_EGRESS_ALLOW: "bad host" is not a host name, IP or CIDR',
    );
  });

  describe('guarded fetch', () => {
    let server: http.Server;
    let port: number;
    beforeAll(async () => {
      server = http.createServer((_req, res) =>
        res.writeHead(302, { location: 'http://10.0.0.1/' }).end('moved'),
      );
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      port = (server.address() as AddressInfo).port;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it('checks the address it connects to (a name resolving to loopback is refused at connect)', async () => {
      // the name passes checkUrl (public), then resolves to loopback when the socket connects
      let calls = 0;
      const lookup = async () => [{ address: calls++ === 0 ? '93.184.216.34' : '127.0.0.1', family: 4 }];
      const egress = createLocalEgress({ allow: [], lookup });
      await expect(
        egress.fetch(`https://rebind.example:${port}/`, {
          method: 'GET',
          headers: {},
          signal: AbortSignal.timeout(2_000),
        }),
      ).rejects.toThrow(/non-public address/);
    });

    it('does not follow redirects', async () => {
      const egress = createLocalEgress({ allow: ['127.0.0.1'] });
      const res = await egress.fetch(`http://127.0.0.1:${port}/`, {
        method: 'GET',
        headers: {},
        signal: AbortSignal.timeout(2_000),
      });
      expect(res.status).toBe(302);
      expect(await res.text()).toBe('moved');
    });
  });
});
