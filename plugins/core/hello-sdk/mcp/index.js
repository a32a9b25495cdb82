// Written with @hay/plugin-sdk (a peer dependency the host links in): `config` mirrors manifest.json's
// configSchema, `platform` its permissions.api; logs go to stderr.
import { definePlugin, z } from '@hay/plugin-sdk';

await definePlugin({
  name: 'hello-sdk',
  version: '1.0.0',
  config: {
    greeting: { type: 'string', env: 'HELLO_GREETING', default: 'Hello' },
    style: { type: 'select', env: 'HELLO_STYLE', options: ['plain', 'shout'], default: 'plain' },
  },
  platform: ['email'],
})
  .tool('greet', { description: 'Greets someone', input: { name: z.string().min(1) } }, ({ name }, ctx) => {
    const text = `${ctx.config.greeting}, ${name}!`;
    return ctx.config.style === 'shout' ? text.toUpperCase() : text;
  })
  .tool(
    'notify',
    { description: 'Emails a greeting', input: { to: z.string(), name: z.string() } },
    async ({ to, name }, ctx) => {
      const sent = await ctx.platform.email.send({
        to,
        subject: 'Hello',
        text: `${ctx.config.greeting}, ${name}!`,
      });
      ctx.log.info('greeting sent', { messageId: sent.messageId });
      return { sent: true, messageId: sent.messageId };
    },
  )
  .run();
