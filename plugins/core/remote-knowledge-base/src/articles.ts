export interface Article {
  id: string;
  title: string;
  body: string;
  tags: string[];
}

/** The demo knowledge base. Real deployments replace this server entirely; only the tool contract matters. */
export const ARTICLES: readonly Article[] = [
  {
    id: 'reset-password',
    title: 'How to reset your password',
    body: 'Open Settings > Security and choose "Reset password". A reset link is emailed to you and expires after 30 minutes.',
    tags: ['account', 'security', 'password'],
  },
  {
    id: 'refund-policy',
    title: 'Refund policy',
    body: 'Purchases can be refunded within 14 days. Contact support with your order number; refunds reach your card in 5-10 business days.',
    tags: ['billing', 'refund'],
  },
  {
    id: 'change-plan',
    title: 'Upgrading or downgrading your plan',
    body: 'Go to Billing > Plan. Upgrades apply immediately and are prorated; downgrades take effect at the next billing date.',
    tags: ['billing', 'plan', 'subscription'],
  },
  {
    id: 'invite-teammates',
    title: 'Inviting teammates',
    body: 'Admins can invite teammates from Settings > Team by email. Invitations expire after 7 days.',
    tags: ['team', 'account'],
  },
  {
    id: 'api-keys',
    title: 'Creating API keys',
    body: 'Create keys under Settings > Developers. Keys are shown once; store them safely and rotate them if leaked.',
    tags: ['developers', 'security', 'api'],
  },
];

export interface SearchHit {
  id: string;
  title: string;
  snippet: string;
  score: number;
}

/** Ranks articles by how many query words appear in title (x3), tags (x2) and body (x1); best first. */
export function searchArticles(articles: readonly Article[], query: string, limit: number): SearchHit[] {
  const words = query
    .toLowerCase()
    .split(/[^\p{L}\p{N}]+/u)
    .filter((w) => w.length > 1);
  if (words.length === 0) return [];
  const hits: SearchHit[] = [];
  for (const article of articles) {
    const title = article.title.toLowerCase();
    const body = article.body.toLowerCase();
    const tags = article.tags.map((t) => t.toLowerCase());
    let score = 0;
    for (const word of words) {
      if (title.includes(word)) score += 3;
      if (tags.some((t) => t.includes(word))) score += 2;
      if (body.includes(word)) score += 1;
    }
    if (score > 0) {
      const snippet = article.body.length > 120 ? `${article.body.slice(0, 117)}...` : article.body;
      hits.push({ id: article.id, title: article.title, snippet, score });
    }
  }
  hits.sort((a, b) => b.score - a.score || a.id.localeCompare(b.id));
  return hits.slice(0, limit);
}
