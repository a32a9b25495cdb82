import type { JsonHttpClient } from './http-client.js';

interface Pending {
  input: unknown;
  resolve: (data: unknown) => void;
  reject: (err: Error) => void;
}

/**
 * Client-side tRPC batching as `httpBatchLink` does it: calls issued in the same event-loop turn go out
 * as ONE request `POST /trpc/p,p,...?batch=1` with body `{"0": input0, ...}` (at most `maxBatch` calls);
 * each call settles with its own entry of the response array.
 */
export class TrpcBatcher {
  private queue: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly http: JsonHttpClient,
    private readonly proc: string,
    private readonly token: string,
    private readonly maxBatch = 100,
  ) {}

  call(input: unknown): Promise<unknown> {
    return new Promise((resolve, reject) => {
      this.queue.push({ input, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  private flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0, this.maxBatch);
      const body: Record<string, unknown> = {};
      batch.forEach((p, i) => (body[String(i)] = p.input));
      const procs = batch.map(() => this.proc).join(',');
      this.http.post(`/trpc/${procs}?batch=1`, body, { authorization: `Bearer ${this.token}` }).then(
        (res) => {
          const items = Array.isArray(res.body)
            ? (res.body as { result?: { data?: unknown }; error?: { message?: string } }[])
            : [];
          batch.forEach((p, i) => {
            const item = items[i];
            if (item?.result) p.resolve(item.result.data);
            else
              p.reject(new Error(item?.error?.message ?? `batch response ${res.status} without entry ${i}`));
          });
        },
        (err: unknown) => batch.forEach((p) => p.reject(err instanceof Error ? err : new Error(String(err)))),
      );
    }
  }
}
