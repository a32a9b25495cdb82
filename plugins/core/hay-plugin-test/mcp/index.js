// MCP stdio server for the Hay test plugin. stdout is the MCP channel: log only to stderr.
// The SDK and zod are peerDependencies (package.json): the host links its own copies into node_modules
// before the first start, wherever the plugins folder is, so there is nothing to install or build.
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';

const server = new McpServer({ name: 'hay-plugin-test', version: '1.0.0' });

server.registerTool(
  'echo',
  {
    description: 'Echoes input',
    inputSchema: { message: z.string().default('') },
    outputSchema: { message: z.string() },
  },
  async ({ message }) => ({
    content: [{ type: 'text', text: message }],
    structuredContent: { message },
  }),
);

await server.connect(new StdioServerTransport());

// The host closes stdin to stop the plugin; exit promptly then (and on the usual signals).
const stop = () => {
  void server.close().finally(() => process.exit(0));
};
process.stdin.on('end', stop);
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
