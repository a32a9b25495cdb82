/** The token of an `Authorization: Bearer <token>` header, trimmed; undefined when absent or another scheme. */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header?.startsWith('Bearer ')) return undefined;
  const token = header.slice(7).trim();
  return token === '' ? undefined : token;
}
