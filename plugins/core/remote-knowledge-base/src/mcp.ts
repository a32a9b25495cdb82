import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { searchArticles, type Article } from './articles.js';

/** A fresh MCP server exposing the knowledge-base tools over `articles` (one per stateless request). */
export function buildKnowledgeBaseServer(articles: readonly Article[]): McpServer {
  const server = new McpServer({ name: 'remote-knowledge-base', version: '1.0.0' });

  server.registerTool(
    'search_articles',
    {
      description: 'Find knowledge-base articles whose title, body or tags match the query.',
      inputSchema: {
        query: z.string().min(1).max(500).describe('Words to look for, e.g. "reset password"'),
        limit: z.number().int().min(1).max(20).optional().describe('Maximum results (default 5)'),
      },
      outputSchema: {
        results: z.array(
          z.object({ id: z.string(), title: z.string(), snippet: z.string(), score: z.number() }),
        ),
      },
    },
    async ({ query, limit }) => {
      const results = searchArticles(articles, query, limit ?? 5);
      const text =
        results.length === 0
          ? `No articles match ${JSON.stringify(query)}.`
          : results.map((r) => `${r.id}: ${r.title}\n  ${r.snippet}`).join('\n');
      return { content: [{ type: 'text', text }], structuredContent: { results } };
    },
  );

  server.registerTool(
    'get_article',
    {
      description: 'Read one knowledge-base article by id.',
      inputSchema: { id: z.string().min(1).describe('Article id from search_articles') },
      outputSchema: { id: z.string(), title: z.string(), body: z.string(), tags: z.array(z.string()) },
    },
    async ({ id }) => {
      const article = articles.find((a) => a.id === id);
      if (!article) {
        return {
          isError: true,
          content: [
            {
              type: 'text',
              text: `No article with id ${JSON.stringify(id)}; use search_articles to find ids.`,
            },
          ],
        };
      }
      return {
        content: [{ type: 'text', text: `# ${article.title}\n\n${article.body}` }],
        structuredContent: { ...article },
      };
    },
  );

  return server;
}
