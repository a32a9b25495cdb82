import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, DB_KINDS, type TestDatabase } from '../helpers/db.js';
import { eventsPlugin, haySign, recordedEvents, startReceiver, verifyHayHeader } from '../helpers/events.js';
import { startTestHost, type TestHost } from '../helpers/host.js';
import { descendantPids, waitFor } from '../helpers/processes.js';
import type { HayClient } from '../../src/api/client.js';

/**
 * Events, webhooks and inbound routes on a real host (real plugin processes, real HTTP), once on PGlite
 * and once on PostgreSQL.
 */

const HOOK_ROUTES = [
  { method: 'POST', path: '/signed', handler: 'on_event' },
  {
    method: 'POST',
    path: '/token',
    handler: 'on_event',
    auth: { scheme: 'token', header: 'X-Hook-Token', secretConfigField: 'token' },
  },
  {
    method: 'POST',
    path: '/gh',
    handler: 'on_event',
    auth: {
      scheme: 'hmac-sha256',
      header: 'X-Hub-Signature-256',
      prefix: 'sha256=',
      secretConfigField: 'ghSecret',
    },
    idempotencyHeader: 'X-GitHub-Delivery',
  },
  {
    method: 'POST',
    path: '/flood',
    handler: 'on_event',
    auth: { scheme: 'token', header: 'X-Hook-Token', secretConfigField: 'token' },
    rateLimitPerMinute: 1,
  },
];

describe.each(DB_KINDS)('events on %s', (kind) => {
  let t: TestHost;
  let db: TestDatabase | undefined;
  let org1: { organizationId: string; hay: HayClient };
  let org2: { organizationId: string; hay: HayClient };

  beforeAll(async () => {
    db = kind === 'postgres' ? await createTestDatabase('postgres') : undefined;
    t = await startTestHost({
      corePlugins: ['incoming-webhook'],
      plugins: {
        'core/ev-pub': eventsPlugin('ev-pub', { permissions: { api: ['events'] } }),
        'core/ev-sub': eventsPlugin('ev-sub', {
          subscriptions: [{ events: ['ticket.*', 'incoming.received'], handler: 'on_event' }],
        }),
        'core/ev-hook': eventsPlugin('ev-hook', {
          type: ['channel'],
          capabilities: {
            mcp: { connection: { type: 'local' }, transport: 'stdio', startCommand: 'node server.mjs' },
            api: { routes: HOOK_ROUTES },
          },
          configSchema: {
            token: { type: 'string', encrypted: true },
            ghSecret: { type: 'string', encrypted: true },
          },
        }),
      },
      ...(db ? { databaseUrl: db.databaseUrl } : {}),
      config: {
        egressAllow: '127.0.0.1',
        eventsPollIntervalMs: 50,
        eventsBackoffBaseMs: 20,
        eventsBackoffMaxMs: 200,
        eventsMaxAttempts: 4,
        eventsDeliveryTimeoutMs: 5_000,
        eventsLeaseMs: 20_000,
        inboundRateLimitBurst: 5,
      },
    });
    org1 = await t.createOrganization('one');
    org2 = await t.createOrganization('two');
    for (const o of [org1, org2])
      for (const pluginId of ['ev-pub', 'ev-sub'])
        await o.hay.plugins.enable.mutate({ pluginId, configuration: {} });
  }, 120_000);

  afterAll(async () => {
    await t?.close();
    await db?.dispose();
    await waitFor(() => descendantPids().length === 0, 'plugin processes to exit');
    expect(descendantPids()).toEqual([]);
  });

  const deliveries = (hay: HayClient, target?: string) =>
    hay.events.deliveries.query({ limit: 500, ...(target ? { target } : {}) }).then((r) => r.deliveries);

  it("an event published by plugin A reaches plugin B of the same org, never another org's B", async () => {
    const publish = (idempotencyKey: string) =>
      org1.hay.plugins.invokeTool.mutate({
        pluginId: 'ev-pub',
        toolName: 'publish',
        arguments: { type: 'ticket.created', payload: { n: 1 }, idempotencyKey },
      });
    const first = await publish('k1');
    expect(first.isError).toBeFalsy();
    const answer = JSON.parse(String((first.content as { text: string }[])[0]?.text).slice(4));
    expect(answer).toMatchObject({ duplicate: false, deliveries: 1 });
    const again = await publish('k1');
    expect(JSON.parse(String((again.content as { text: string }[])[0]?.text).slice(4))).toEqual({
      eventId: answer.eventId,
      duplicate: true,
      deliveries: 1,
    });

    await waitFor(
      () => recordedEvents(t.dataDir, org1.organizationId, 'ev-sub').length === 1,
      'B to handle it',
    );
    const [event] = recordedEvents(t.dataDir, org1.organizationId, 'ev-sub');
    expect(event).toMatchObject({
      id: answer.eventId,
      type: 'ticket.created',
      payload: { n: 1 },
      organizationId: org1.organizationId,
      source: 'plugin:ev-pub',
      idempotencyKey: 'k1',
      attempt: 1,
      redelivery: false,
    });
    await waitFor(
      async () =>
        (await deliveries(org1.hay)).some((d) => d.eventId === answer.eventId && d.status === 'delivered'),
      'the delivery to be recorded as delivered',
    );
    expect(recordedEvents(t.dataDir, org2.organizationId, 'ev-sub')).toEqual([]);
    expect(await deliveries(org2.hay)).toEqual([]);

    // a plugin without the events permission cannot publish
    const denied = await org1.hay.plugins.invokeTool.mutate({
      pluginId: 'ev-sub',
      toolName: 'publish',
      arguments: { type: 'ticket.created' },
    });
    expect(denied.isError).toBe(true);
    expect((denied.content as { text: string }[])[0]?.text).toMatch(
      /^403 .*does not have permission to access events/,
    );

    // a bad type is refused at the edge, naming the field
    const badType = await org1.hay.plugins.invokeTool.mutate({
      pluginId: 'ev-pub',
      toolName: 'publish',
      arguments: { type: 'Not A Type' },
    });
    expect((badType.content as { text: string }[])[0]?.text).toMatch(/^400 .*type: must be lowercase words/);

    const subs = await org1.hay.events.subscriptions.query();
    expect(subs).toContainEqual({
      pluginId: 'ev-sub',
      enabled: true,
      events: ['ticket.*', 'incoming.received'],
      handler: 'on_event',
      ordered: false,
    });
  });

  it('an outbound webhook arrives signed and verifies; failing 3 times then succeeding is processed once', async () => {
    const receiver = await startReceiver((_r, n) => (n <= 3 ? 500 : 200));
    try {
      const { endpoint, secret } = await org1.hay.events.createEndpoint.mutate({
        url: receiver.url,
        eventTypes: ['order.*'],
      });
      expect(secret).toMatch(/^whsec_/);
      expect(JSON.stringify(await org1.hay.events.endpoints.query())).not.toContain(secret);
      const published = await org1.hay.events.publish.mutate({ type: 'order.paid', payload: { amount: 5 } });
      expect(published).toMatchObject({ duplicate: false, deliveries: 1 });
      await waitFor(async () => {
        const d = (await deliveries(org1.hay, endpoint.id))[0];
        return d?.status === 'delivered';
      }, 'the webhook delivery to succeed');
      expect(receiver.requests.map((r) => r.status)).toEqual([500, 500, 500, 200]);
      for (const r of receiver.requests) {
        expect(verifyHayHeader(String(r.headers['hay-signature']), r.body, secret)).toBe(true);
        expect(verifyHayHeader(String(r.headers['hay-signature']), r.body, `${secret}x`)).toBe(false);
      }
      expect(receiver.requests.map((r) => r.headers['hay-attempt'])).toEqual(['1', '2', '3', '4']);
      expect(receiver.processed.size).toBe(1);
      expect(JSON.parse([...receiver.processed.values()][0] ?? '')).toMatchObject({
        id: published.eventId,
        type: 'order.paid',
        organizationId: org1.organizationId,
        payload: { amount: 5 },
      });
      const [d] = await deliveries(org1.hay, endpoint.id);
      expect(d).toMatchObject({ status: 'delivered', attempts: 4, lastError: null });

      // rotation: the new secret signs; with a grace period the old one signs too
      const rotated = await org1.hay.events.rotateEndpointSecret.mutate({
        endpointId: endpoint.id,
        graceSeconds: 60,
      });
      expect(rotated.secret).not.toBe(secret);
      await org1.hay.events.publish.mutate({ type: 'order.shipped', payload: {} });
      await waitFor(() => receiver.requests.length === 5, 'the delivery after rotation');
      const last = receiver.requests[4];
      expect(verifyHayHeader(String(last?.headers['hay-signature']), last?.body ?? '', rotated.secret)).toBe(
        true,
      );
      expect(verifyHayHeader(String(last?.headers['hay-signature']), last?.body ?? '', secret)).toBe(true);
      await org1.hay.events.deleteEndpoint.mutate({ endpointId: endpoint.id });
    } finally {
      await receiver.close();
    }
  });

  it('dead-letters after N failed attempts with the last error, then a replay delivers it', async () => {
    let up = false;
    const receiver = await startReceiver(() => (up ? 200 : 503));
    try {
      const { endpoint } = await org1.hay.events.createEndpoint.mutate({
        url: receiver.url,
        eventTypes: ['invoice.*'],
      });
      await org1.hay.events.publish.mutate({ type: 'invoice.due', payload: { id: 7 } });
      await waitFor(
        async () => (await deliveries(org1.hay, endpoint.id))[0]?.status === 'dead',
        'the dead letter',
      );
      const [dead] = await deliveries(org1.hay, endpoint.id);
      expect(dead).toMatchObject({ status: 'dead', attempts: 4, maxAttempts: 4 });
      expect(dead?.lastError).toMatch(/^HTTP 503/);
      expect(receiver.requests).toHaveLength(4);
      const audit = await org1.hay.audit.list.query({ action: 'event.dead' });
      expect(audit.entries.some((e) => e.details.deliveryId === dead?.id)).toBe(true);

      up = true;
      const replayed = await org1.hay.events.replay.mutate({ deliveryId: dead?.id ?? '' });
      expect(replayed.status).toMatch(/pending|delivering|delivered/);
      await waitFor(
        async () => (await deliveries(org1.hay, endpoint.id))[0]?.status === 'delivered',
        'the replay',
      );
      expect(receiver.requests.map((r) => r.status)).toEqual([503, 503, 503, 503, 200]);
      await expect(org1.hay.events.replay.mutate({ deliveryId: dead?.id ?? '' })).rejects.toThrow(
        /only a dead delivery can be replayed/,
      );
      // another org cannot see or replay it
      await expect(org2.hay.events.replay.mutate({ deliveryId: dead?.id ?? '' })).rejects.toThrow(
        /not found/,
      );
      await org1.hay.events.deleteEndpoint.mutate({ endpointId: endpoint.id });
    } finally {
      await receiver.close();
    }
  });

  it('refuses webhook endpoints on loopback, private and link-local addresses unless allowed', async () => {
    for (const url of [
      'https://10.1.2.3/x',
      'https://127.0.0.2/x',
      'https://169.254.169.254/latest',
      'https://[::1]/x',
      'http://example.com/x',
    ])
      await expect(org1.hay.events.createEndpoint.mutate({ url, eventTypes: ['*'] }), url).rejects.toThrow(
        /plain http|private, loopback, link-local or reserved range/,
      );
    expect(await org1.hay.events.endpoints.query()).toEqual([]);
  });

  it('an inbound route answers 202 and hands a verified request to the handler; bad callers get 401 and nothing is delivered', async () => {
    await org1.hay.plugins.enable.mutate({
      pluginId: 'ev-hook',
      configuration: { token: 'tok-123', ghSecret: 'gh-secret' },
    });
    const { secret, url } = await org1.hay.events.rotateRouteSecret.mutate({
      pluginId: 'ev-hook',
      method: 'POST',
      path: '/signed',
    });
    expect(url).toBe(`${t.url}/v1/hooks/${org1.organizationId}/ev-hook/signed`);
    const base = `${t.url}/v1/hooks/${org1.organizationId}/ev-hook`;
    const body = JSON.stringify({ hello: 'world' });
    const post = (p: string, headers: Record<string, string>, b = body) =>
      fetch(`${base}${p}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: b,
      });

    const bad = [
      await post('/signed', {}),
      await post('/signed', { 'hay-signature': haySign('wrong-secret', body) }),
      await post('/signed', { 'hay-signature': haySign(secret, body, Math.floor(Date.now() / 1000) - 3600) }),
      await post('/signed', { 'hay-signature': haySign(secret, `${body} `) }),
      await post('/token', { 'x-hook-token': 'tok-12' }),
      await post('/gh', { 'x-hub-signature-256': 'sha256=00' }),
    ];
    expect(bad.map((r) => r.status)).toEqual([401, 401, 401, 401, 401, 401]);
    expect(await bad[1]?.json()).toEqual({
      error: { code: 'UNAUTHORIZED', message: 'caller verification failed: signature does not match' },
    });
    expect(await deliveries(org1.hay, 'ev-hook')).toEqual([]);
    const refused = await org1.hay.audit.list.query({ action: 'route.refused' });
    expect(refused.entries.length).toBeGreaterThanOrEqual(6);

    // not enabled for org2: the same 404 as a route that does not exist
    const other = await fetch(`${t.url}/v1/hooks/${org2.organizationId}/ev-hook/signed`, {
      method: 'POST',
      body,
    });
    expect(other.status).toBe(404);
    expect((await fetch(`${base}/nope`, { method: 'POST', body })).status).toBe(404);

    const ok = await post('/signed', { 'hay-signature': haySign(secret, body) });
    expect(ok.status).toBe(202);
    const accepted = (await ok.json()) as { eventId: string };
    const gh = (await import('node:crypto')).createHmac('sha256', 'gh-secret').update(body).digest('hex');
    expect((await post('/token', { 'x-hook-token': 'tok-123' })).status).toBe(202);
    const ghHeaders = { 'x-hub-signature-256': `sha256=${gh}`, 'x-github-delivery': 'gh-1' };
    expect((await post('/gh', ghHeaders)).status).toBe(202);
    const repeat = await post('/gh', ghHeaders);
    expect(repeat.status).toBe(202);
    expect(await repeat.json()).toMatchObject({ duplicate: true });

    await waitFor(
      () => recordedEvents(t.dataDir, org1.organizationId, 'ev-hook').length === 3,
      'the handler calls',
    );
    const got = recordedEvents(t.dataDir, org1.organizationId, 'ev-hook');
    expect(got.map((e) => (e.payload as { path: string }).path).sort()).toEqual(['/gh', '/signed', '/token']);
    const signed = got.find((e) => e.id === accepted.eventId);
    expect(signed).toMatchObject({ type: 'hay.route.request', source: 'route:ev-hook' });
    expect(signed?.payload).toMatchObject({
      method: 'POST',
      path: '/signed',
      json: { hello: 'world' },
      body,
    });
    expect((signed?.payload as { headers: Record<string, string> }).headers['hay-signature']).toBeUndefined();
  });

  it('an inbound request whose body or query has NUL (binary, a JSON \\u0000) is accepted and delivered', async () => {
    // found 2026-12-02: jsonb refuses NUL, so storing the event failed with 500 after verification: the
    // sender's retries failed the same way and the request was never delivered
    await org1.hay.plugins.enable.mutate({
      pluginId: 'ev-hook',
      configuration: { token: 'tok-123', ghSecret: 'gh-secret' },
    });
    const headers = { 'x-hook-token': 'tok-123' };
    const base = `${t.url}/v1/hooks/${org1.organizationId}/ev-hook/token`;
    const json = await fetch(`${base}?q=a%00b`, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/json' },
      body: JSON.stringify({ text: 'nul \u0000 here' }),
    });
    expect(json.status).toBe(202);
    const binary = await fetch(base, {
      method: 'POST',
      headers: { ...headers, 'content-type': 'application/octet-stream' },
      body: Buffer.from([0x50, 0x4b, 0x00, 0x00, 0xff]),
    });
    expect(binary.status).toBe(202);
    const ids = [((await json.json()) as { eventId: string }).eventId];
    ids.push(((await binary.json()) as { eventId: string }).eventId);
    await waitFor(
      () =>
        recordedEvents(t.dataDir, org1.organizationId, 'ev-hook').filter((e) => ids.includes(e.id as string))
          .length === 2,
      'both requests delivered',
    );
    const got = recordedEvents(t.dataDir, org1.organizationId, 'ev-hook');
    expect(got.find((e) => e.id === ids[0])?.payload).toMatchObject({
      query: { q: 'a\ufffdb' },
      json: { text: 'nul \ufffd here' },
    });
    expect(got.find((e) => e.id === ids[1])?.payload).toMatchObject({ body: 'PK\ufffd\ufffd\ufffd' });
  });

  it('a flood on an inbound route is rate limited: only what the limit admits is delivered', async () => {
    const before = (await deliveries(org1.hay, 'ev-hook')).length;
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        fetch(`${t.url}/v1/hooks/${org1.organizationId}/ev-hook/flood`, {
          method: 'POST',
          headers: { 'x-hook-token': 'tok-123', 'content-type': 'application/json' },
          body: JSON.stringify({ i }),
        }),
      ),
    );
    const statuses = answers.map((r) => r.status);
    expect(statuses.filter((s) => s === 202)).toHaveLength(1);
    expect(statuses.filter((s) => s === 429)).toHaveLength(19);
    expect(answers.find((r) => r.status === 429)?.headers.get('retry-after')).toMatch(/^\d+$/);
    expect((await deliveries(org1.hay, 'ev-hook')).length).toBe(before + 1);
  });

  it('worked example: the incoming-webhook channel receives a webhook and publishes an event a second plugin handles', async () => {
    await org1.hay.plugins.enable.mutate({ pluginId: 'incoming-webhook', configuration: {} });
    const routes = await org1.hay.events.routes.query();
    expect(routes).toContainEqual(
      expect.objectContaining({
        pluginId: 'incoming-webhook',
        path: '/incoming',
        hasSecret: false,
        enabled: true,
      }),
    );
    const { secret, url } = await org1.hay.events.rotateRouteSecret.mutate({
      pluginId: 'incoming-webhook',
      method: 'POST',
      path: '/incoming',
    });
    const body = JSON.stringify({ text: 'hello from outside' });
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'hay-signature': haySign(secret, body) },
      body,
    });
    expect(res.status).toBe(202);
    await waitFor(
      () =>
        recordedEvents(t.dataDir, org1.organizationId, 'ev-sub').some((e) => e.type === 'incoming.received'),
      'ev-sub to handle incoming.received',
      20_000,
    );
    const event = recordedEvents(t.dataDir, org1.organizationId, 'ev-sub').find(
      (e) => e.type === 'incoming.received',
    );
    expect(event).toMatchObject({
      source: 'plugin:incoming-webhook',
      payload: { body: { text: 'hello from outside' } },
    });
    expect(recordedEvents(t.dataDir, org2.organizationId, 'ev-sub')).toEqual([]);
  });

  it('encryption key rotation re-encrypts webhook and route secrets; both still verify', async () => {
    const receiver = await startReceiver();
    try {
      const { endpoint, secret } = await org1.hay.events.createEndpoint.mutate({
        url: receiver.url,
        eventTypes: ['rotate.*'],
      });
      const route = await org1.hay.events.rotateRouteSecret.mutate({
        pluginId: 'ev-hook',
        method: 'POST',
        path: '/signed',
      });
      const { reencrypted } = await t.admin.admin.rotateEncryptionKey.mutate();
      expect(reencrypted).toBeGreaterThanOrEqual(2);
      await org1.hay.events.publish.mutate({ type: 'rotate.done', payload: {} });
      await waitFor(() => receiver.requests.length === 1, 'the delivery after key rotation');
      const r = receiver.requests[0];
      expect(verifyHayHeader(String(r?.headers['hay-signature']), r?.body ?? '', secret)).toBe(true);
      const body = '{"after":"rotation"}';
      const res = await fetch(route.url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'hay-signature': haySign(route.secret, body) },
        body,
      });
      expect(res.status).toBe(202);
      await org1.hay.events.deleteEndpoint.mutate({ endpointId: endpoint.id });
    } finally {
      await receiver.close();
    }
  });

  it('exposes delivery metrics', async () => {
    const text = await (
      await fetch(`${t.url}/metrics`, { headers: { authorization: `Bearer ${t.adminToken}` } })
    ).text();
    expect(text).toMatch(/hay_event_deliveries_total\{target="webhook",outcome="delivered"\} [1-9]/);
    expect(text).toMatch(/hay_event_deliveries_total\{target="webhook",outcome="retried"\} [1-9]/);
    expect(text).toMatch(/hay_event_deliveries_total\{target="webhook",outcome="dead"\} 1/);
    expect(text).toMatch(/hay_event_delivery_latency_seconds_count\{target="plugin"\} [1-9]/);
    expect(text).toMatch(/hay_inbound_requests_total\{outcome="rate_limited"\} 19/);
  });
});
