import type { IncomingHttpHeaders } from 'node:http';
import { classifyInboundRequest } from '@modelcontextprotocol/server';

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/**
 * Whether the SDK routes this request to 2025-era serving: the same decision as the SDK's
 * `isLegacyRequest(toWebRequest(req, body), body)` (a POST without a JSON body, or the SDK's
 * `classifyInboundRequest` outcome `legacy`), made from the Node headers and the already parsed body
 * without building a web `Request` (test/unit/gateway-era.test.ts checks both agree).
 */
export function isLegacyEra(
  method: string | undefined,
  headers: IncomingHttpHeaders,
  body: unknown,
): boolean {
  const httpMethod = (method ?? 'GET').toUpperCase();
  if (httpMethod === 'POST' && body === undefined) return true;
  const protocolVersionHeader = header(headers, 'mcp-protocol-version');
  const mcpMethodHeader = header(headers, 'mcp-method');
  const mcpNameHeader = header(headers, 'mcp-name');
  const outcome = classifyInboundRequest({
    httpMethod,
    ...(protocolVersionHeader !== undefined ? { protocolVersionHeader } : {}),
    ...(mcpMethodHeader !== undefined ? { mcpMethodHeader } : {}),
    ...(mcpNameHeader !== undefined ? { mcpNameHeader } : {}),
    ...(httpMethod === 'POST' ? { body } : {}),
  });
  return outcome.kind === 'legacy';
}
