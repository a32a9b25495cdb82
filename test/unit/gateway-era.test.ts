import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { toWebRequest } from '@modelcontextprotocol/node';
import { isLegacyRequest } from '@modelcontextprotocol/server';
import { describe, expect, it } from 'vitest';
import { isLegacyEra } from '../../src/gateway/era.js';

const modernMeta = {
  'io.modelcontextprotocol/protocolVersion': '2026-07-28',
  'io.modelcontextprotocol/clientInfo': { name: 't', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};
const modernHeaders = {
  'mcp-protocol-version': '2026-07-28',
  'mcp-method': 'tools/call',
  'mcp-name': 'a__b',
};
const call = (meta?: object) => ({
  jsonrpc: '2.0',
  id: 1,
  method: 'tools/call',
  params: { name: 'a__b', arguments: {}, ...(meta ? { _meta: meta } : {}) },
});

const cases: { name: string; method: string; headers: IncomingHttpHeaders; body?: unknown }[] = [
  { name: 'modern tools/call', method: 'POST', headers: modernHeaders, body: call(modernMeta) },
  { name: 'modern body, no headers', method: 'POST', headers: {}, body: call(modernMeta) },
  { name: 'modern headers, no meta', method: 'POST', headers: modernHeaders, body: call() },
  {
    name: 'mismatched Mcp-Name',
    method: 'POST',
    headers: { ...modernHeaders, 'mcp-name': 'x' },
    body: call(modernMeta),
  },
  {
    name: 'server/discover',
    method: 'POST',
    headers: { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'server/discover' },
    body: { jsonrpc: '2.0', id: 'd', method: 'server/discover', params: { _meta: modernMeta } },
  },
  {
    name: 'initialize',
    method: 'POST',
    headers: {},
    body: {
      jsonrpc: '2.0',
      id: 0,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    },
  },
  {
    name: 'legacy session call',
    method: 'POST',
    headers: { 'mcp-session-id': 's', 'mcp-protocol-version': '2025-11-25' },
    body: call(),
  },
  {
    name: 'legacy notification',
    method: 'POST',
    headers: { 'mcp-session-id': 's' },
    body: { jsonrpc: '2.0', method: 'notifications/initialized' },
  },
  {
    name: 'legacy response',
    method: 'POST',
    headers: { 'mcp-session-id': 's' },
    body: { jsonrpc: '2.0', id: 3, result: {} },
  },
  { name: 'batch', method: 'POST', headers: {}, body: [call(), call()] },
  { name: 'mixed batch', method: 'POST', headers: {}, body: [call(modernMeta), call()] },
  { name: 'no body', method: 'POST', headers: {} },
  { name: 'not JSON-RPC', method: 'POST', headers: modernHeaders, body: { hello: 'world' } },
  { name: 'GET stream', method: 'GET', headers: { 'mcp-session-id': 's', accept: 'text/event-stream' } },
  { name: 'GET with modern header', method: 'GET', headers: { 'mcp-protocol-version': '2026-07-28' } },
  { name: 'DELETE', method: 'DELETE', headers: { 'mcp-session-id': 's' } },
  {
    name: 'repeated header',
    method: 'POST',
    headers: { 'mcp-protocol-version': '2026-07-28, 2026-07-28' },
    body: call(modernMeta),
  },
];

describe('isLegacyEra', () => {
  it.each(cases)('routes "$name" exactly as the SDK isLegacyRequest does', async (c) => {
    // an empty stream: the body, when there is one, is the parsed value (as behind fastify's parser)
    const req = Object.assign(Readable.from([]), {
      method: c.method,
      url: '/mcp',
      headers: { host: 'localhost', ...c.headers },
    });
    const sdk = await isLegacyRequest(await toWebRequest(req as unknown as IncomingMessage, c.body), c.body);
    expect(isLegacyEra(c.method, req.headers, c.body)).toBe(sdk);
  });

  it('covers both outcomes', async () => {
    const outcomes = new Set(cases.map((c) => isLegacyEra(c.method, c.headers, c.body)));
    expect([...outcomes].sort()).toEqual([false, true]);
  });
});
