import http from 'node:http';

export interface JsonResponse {
  status: number;
  body: unknown;
}

/**
 * A small keep-alive JSON client on node:http, the same for every HTTP measurement so the baselines
 * and the host pay the same client cost. `maxSockets` bounds open connections (one per call in flight).
 */
export class JsonHttpClient {
  private readonly agent: http.Agent;
  private readonly base: URL;

  constructor(
    baseUrl: string,
    private readonly headers: Record<string, string> = {},
    maxSockets = 128,
  ) {
    this.base = new URL(baseUrl);
    this.agent = new http.Agent({ keepAlive: true, maxSockets, keepAliveMsecs: 10_000 });
  }

  /** POSTs `body` as JSON; resolves with the status and the parsed response (any status). */
  post(
    path: string,
    body: unknown,
    extraHeaders: Record<string, string> = {},
    timeoutMs = 30_000,
  ): Promise<JsonResponse> {
    const payload = JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = http.request(
        {
          agent: this.agent,
          host: this.base.hostname,
          port: this.base.port,
          method: 'POST',
          path,
          timeout: timeoutMs,
          headers: {
            ...this.headers,
            ...extraHeaders,
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              resolve({
                status: res.statusCode ?? 0,
                body: text ? (JSON.parse(text) as unknown) : undefined,
              });
            } catch {
              resolve({ status: res.statusCode ?? 0, body: text });
            }
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new Error(`POST ${path} timed out after ${timeoutMs} ms`)));
      req.on('error', reject);
      req.end(payload);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
