// The features the MCP conformance server suite (conformance 0.1.16, `conformance server`) exercises,
// as a plain SDK 1.x stdio plugin; conformance/server-host.ts serves it behind the host's /mcp.
import { completable } from '@modelcontextprotocol/sdk/server/completable.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const PNG =
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';
const WAV = 'UklGRiQAAABXQVZFZm10IBAAAAABAAEAQB8AAEAfAAABAAgAZGF0YQAAAAA=';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const server = new McpServer(
  { name: 'conformance-fixture', version: '1.0.0' },
  { capabilities: { logging: {}, resources: { subscribe: true } } },
);
server.server.setRequestHandler(SubscribeRequestSchema, () => ({}));
server.server.setRequestHandler(UnsubscribeRequestSchema, () => ({}));
const text = (t) => ({ content: [{ type: 'text', text: t }] });

server.registerTool('test_simple_text', { description: 'test_simple_text' }, async () =>
  text('This is a simple text response for testing.'),
);
server.registerTool('test_image_content', { description: 'test_image_content' }, async () => ({
  content: [{ type: 'image', data: PNG, mimeType: 'image/png' }],
}));
server.registerTool('test_audio_content', { description: 'test_audio_content' }, async () => ({
  content: [{ type: 'audio', data: WAV, mimeType: 'audio/wav' }],
}));
server.registerTool('test_embedded_resource', { description: 'test_embedded_resource' }, async () => ({
  content: [
    {
      type: 'resource',
      resource: {
        uri: 'test://embedded-resource',
        mimeType: 'text/plain',
        text: 'This is an embedded resource content.',
      },
    },
  ],
}));
server.registerTool(
  'test_multiple_content_types',
  { description: 'test_multiple_content_types' },
  async () => ({
    content: [
      { type: 'text', text: 'Multiple content types test:' },
      { type: 'image', data: PNG, mimeType: 'image/png' },
      {
        type: 'resource',
        resource: {
          uri: 'test://mixed-content-resource',
          mimeType: 'application/json',
          text: '{"test":"data","value":123}',
        },
      },
    ],
  }),
);
server.registerTool('test_tool_with_logging', { description: 'test_tool_with_logging' }, async () => {
  for (const data of ['Tool execution started', 'Tool processing data', 'Tool execution completed']) {
    await server.sendLoggingMessage({ level: 'info', data });
    await sleep(50);
  }
  return text('Tool with logging executed successfully');
});
server.registerTool('test_error_handling', { description: 'test_error_handling' }, async () => ({
  isError: true,
  content: [{ type: 'text', text: 'This tool intentionally returns an error for testing' }],
}));
server.registerTool('test_tool_with_progress', { description: 'test_tool_with_progress' }, async (extra) => {
  const token = extra._meta?.progressToken;
  for (const progress of [0, 50, 100]) {
    if (token !== undefined)
      await extra.sendNotification({
        method: 'notifications/progress',
        params: { progressToken: token, progress, total: 100 },
      });
    await sleep(50);
  }
  return text(String(token ?? 'no token'));
});
server.registerTool(
  'test_sampling',
  { description: 'test_sampling', inputSchema: { prompt: z.string() } },
  async ({ prompt }) => {
    const r = await server.server.createMessage({
      messages: [{ role: 'user', content: { type: 'text', text: prompt } }],
      maxTokens: 100,
    });
    return text(`LLM response: ${r.content.type === 'text' ? r.content.text : ''}`);
  },
);
server.registerTool(
  'test_elicitation',
  { description: 'test_elicitation', inputSchema: { message: z.string() } },
  async ({ message }) => {
    const r = await server.server.elicitInput({
      message,
      requestedSchema: {
        type: 'object',
        properties: { username: { type: 'string' }, email: { type: 'string' } },
        required: ['username', 'email'],
      },
    });
    return text(`User response: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
  },
);

const elicited = (r) =>
  text(`Elicitation completed: action=${r.action}, content=${JSON.stringify(r.content ?? {})}`);
server.registerTool(
  'test_elicitation_sep1034_defaults',
  { description: 'test_elicitation_sep1034_defaults' },
  async () =>
    elicited(
      await server.server.elicitInput({
        message: 'Please review and update the form fields with defaults',
        requestedSchema: {
          type: 'object',
          properties: {
            name: { type: 'string', description: 'User name', default: 'John Doe' },
            age: { type: 'integer', description: 'User age', default: 30 },
            score: { type: 'number', description: 'User score', default: 95.5 },
            status: {
              type: 'string',
              description: 'User status',
              enum: ['active', 'inactive', 'pending'],
              default: 'active',
            },
            verified: { type: 'boolean', description: 'Verification status', default: true },
          },
          required: [],
        },
      }),
    ),
);
server.registerTool(
  'test_elicitation_sep1330_enums',
  { description: 'test_elicitation_sep1330_enums' },
  async () =>
    elicited(
      await server.server.elicitInput({
        message: 'Please select options from the enum fields',
        requestedSchema: {
          type: 'object',
          properties: {
            untitledSingle: { type: 'string', enum: ['option1', 'option2', 'option3'] },
            titledSingle: {
              type: 'string',
              oneOf: [
                { const: 'value1', title: 'First Option' },
                { const: 'value2', title: 'Second Option' },
                { const: 'value3', title: 'Third Option' },
              ],
            },
            legacyEnum: {
              type: 'string',
              enum: ['opt1', 'opt2', 'opt3'],
              enumNames: ['Option One', 'Option Two', 'Option Three'],
            },
            untitledMulti: {
              type: 'array',
              items: { type: 'string', enum: ['option1', 'option2', 'option3'] },
            },
            titledMulti: {
              type: 'array',
              items: {
                anyOf: [
                  { const: 'value1', title: 'First Choice' },
                  { const: 'value2', title: 'Second Choice' },
                  { const: 'value3', title: 'Third Choice' },
                ],
              },
            },
          },
          required: [],
        },
      }),
    ),
);

server.registerResource('static-text', 'test://static-text', { mimeType: 'text/plain' }, async () => ({
  contents: [
    {
      uri: 'test://static-text',
      mimeType: 'text/plain',
      text: 'This is the content of the static text resource.',
    },
  ],
}));
server.registerResource('watched', 'test://watched-resource', { mimeType: 'text/plain' }, async () => ({
  contents: [{ uri: 'test://watched-resource', mimeType: 'text/plain', text: 'Watched resource content.' }],
}));
server.registerResource('static-binary', 'test://static-binary', { mimeType: 'image/png' }, async () => ({
  contents: [{ uri: 'test://static-binary', mimeType: 'image/png', blob: PNG }],
}));
server.registerResource(
  'template',
  new ResourceTemplate('test://template/{id}/data', { list: undefined }),
  { mimeType: 'application/json' },
  async (uri, { id }) => ({
    contents: [
      {
        uri: uri.href,
        mimeType: 'application/json',
        text: JSON.stringify({ id, templateTest: true, data: `Data for ID: ${id}` }),
      },
    ],
  }),
);

server.registerPrompt('test_simple_prompt', { description: 'test_simple_prompt' }, () => ({
  messages: [{ role: 'user', content: { type: 'text', text: 'This is a simple prompt for testing.' } }],
}));
server.registerPrompt(
  'test_prompt_with_arguments',
  {
    description: 'test_prompt_with_arguments',
    argsSchema: {
      arg1: completable(z.string(), (v) => ['paris', 'park', 'party'].filter((x) => x.startsWith(v))),
      arg2: z.string(),
    },
  },
  ({ arg1, arg2 }) => ({
    messages: [
      {
        role: 'user',
        content: { type: 'text', text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` },
      },
    ],
  }),
);
server.registerPrompt(
  'test_prompt_with_embedded_resource',
  { description: 'test_prompt_with_embedded_resource', argsSchema: { resourceUri: z.string() } },
  ({ resourceUri }) => ({
    messages: [
      {
        role: 'user',
        content: {
          type: 'resource',
          resource: {
            uri: resourceUri,
            mimeType: 'text/plain',
            text: 'Embedded resource content for testing.',
          },
        },
      },
      { role: 'user', content: { type: 'text', text: 'Please process the embedded resource above.' } },
    ],
  }),
);
server.registerPrompt('test_prompt_with_image', { description: 'test_prompt_with_image' }, () => ({
  messages: [
    { role: 'user', content: { type: 'image', data: PNG, mimeType: 'image/png' } },
    { role: 'user', content: { type: 'text', text: 'Please analyze the image above.' } },
  ],
}));

await server.connect(new StdioServerTransport());
const stop = () => void server.close().finally(() => process.exit(0));
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
