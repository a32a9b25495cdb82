import nodemailer, { type Transporter } from 'nodemailer';
import { z } from 'zod';
import { HayError } from '../errors.js';
import type { Logger } from '../logger.js';
import { method, type PlatformApi } from './platform-api.js';

const sendInput = z.object({
  to: z.union([z.email(), z.array(z.email()).min(1).max(50)]),
  subject: z.string().min(1).max(998),
  text: z.string().max(1_000_000),
  html: z.string().max(1_000_000).optional(),
});

/**
 * Platform API `email`: sends mail through SMTP at `smtpUrl` (e.g. smtp://127.0.0.1:2525). The sender is
 * `from`; each message carries X-Hay-Org and X-Hay-Plugin headers. Without smtpUrl every call fails
 * with a clear error.
 */
export function createEmailApi(options: {
  smtpUrl: string | undefined;
  from: string;
  logger: Logger;
  timeoutMs: number;
}): PlatformApi {
  let transport: Transporter | undefined;
  const get = () => {
    if (!options.smtpUrl)
      throw new HayError(
        'PLUGIN_NOT_READY',
        'the email API is not configured on this host (set HAY_SMTP_URL)',
      );
    const url = new URL(options.smtpUrl);
    for (const name of ['connectionTimeout', 'greetingTimeout', 'socketTimeout'])
      if (!url.searchParams.has(name)) url.searchParams.set(name, String(options.timeoutMs));
    transport ??= nodemailer.createTransport(url.toString());
    return transport;
  };
  return {
    name: 'email',
    methods: {
      send: method(
        sendInput,
        async (input, ctx) => {
          const info = await get().sendMail({
            from: options.from,
            to: input.to,
            subject: input.subject,
            text: input.text,
            ...(input.html !== undefined ? { html: input.html } : {}),
            headers: { 'X-Hay-Org': ctx.orgId, 'X-Hay-Plugin': ctx.pluginId },
          });
          options.logger.info(
            { orgId: ctx.orgId, pluginId: ctx.pluginId, messageId: info.messageId },
            'email sent',
          );
          return { messageId: String(info.messageId), accepted: (info.accepted as unknown[]).map(String) };
        },
        (input) => (Array.isArray(input.to) ? input.to.length : 1),
      ),
    },
    async close() {
      transport?.close();
      transport = undefined;
    },
  };
}
