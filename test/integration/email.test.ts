import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditRows, createOrg, startTestHost, trpc, type TestHost } from '../fixtures/adversarial/harness.js';
import { startSmtpServer } from '../fixtures/adversarial/smtp.js';
import { descendantPids, waitFor } from '../helpers/processes.js';

/** The bundled email-notifier plugin sends real mail through the platform email API (sandbox off). */
let t: TestHost;
let smtp: Awaited<ReturnType<typeof startSmtpServer>>;
let org: Awaited<ReturnType<typeof createOrg>>;

beforeAll(async () => {
  smtp = await startSmtpServer();
  t = await startTestHost({ sandbox: 'off', smtpUrl: smtp.url });
  org = await createOrg(t, 'mailer');
}, 120_000);

afterAll(async () => {
  await t?.dispose();
  await smtp?.close();
  await waitFor(() => descendantPids().length === 0, 'plugin processes to exit');
  expect(descendantPids()).toEqual([]);
});

describe('email platform API', () => {
  it('send_email through plugins.invokeTool arrives at the SMTP server with the org header', async () => {
    expect(
      (await trpc(t.host.url, 'plugins.enable', org.adminKey, { pluginId: 'email-notifier' })).data,
    ).toEqual({ success: true });
    const res = await trpc<{ isError?: boolean; content: { text: string }[] }>(
      t.host.url,
      'plugins.invokeTool',
      org.memberKey,
      {
        pluginId: 'email-notifier',
        toolName: 'send_email',
        arguments: { to: 'team@example.com', subject: 'Hello from Hay', text: 'Body line one.' },
      },
    );
    expect(res.error).toBeUndefined();
    expect(res.data?.isError).toBeFalsy();
    expect(res.data?.content[0]?.text).toMatch(/^Email sent to team@example.com/);
    await waitFor(() => smtp.messages.length === 1, 'the message at the SMTP server');
    const mail = smtp.messages[0];
    expect(mail?.to).toEqual(['team@example.com']);
    expect(mail?.headers.get('subject')).toBe('Hello from Hay');
    expect(mail?.headers.get('x-hay-org')).toBe(org.id);
    expect(mail?.headers.get('x-hay-plugin')).toBe('email-notifier');
    expect(mail?.body).toBe('Body line one.');
    const invoked = (await auditRows(t)).filter(
      (r) => r.action === 'tool.invoke' && r.pluginId === 'email-notifier',
    );
    expect(invoked).toHaveLength(1);
    expect(invoked[0]).toMatchObject({ organizationId: org.id, outcome: 'ok' });
  });

  it('invalid arguments are refused before the plugin runs: no mail is sent', async () => {
    const before = smtp.messages.length;
    const res = await trpc(t.host.url, 'plugins.invokeTool', org.memberKey, {
      pluginId: 'email-notifier',
      toolName: 'send_email',
      arguments: { to: 'team@example.com', subject: 'no body' },
    });
    expect(res.error).toMatchObject({ code: 'BAD_REQUEST', hayCode: 'ARGUMENTS_INVALID' });
    expect(res.error?.message).toMatch(/text/);
    expect(smtp.messages.length).toBe(before);
  });
});
