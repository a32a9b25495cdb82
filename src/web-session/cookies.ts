/** Name of the dashboard session cookie (HttpOnly; its value is the plain session id). */
export const SESSION_COOKIE = 'hay_session';
/** Header a cookie-authenticated request carries its CSRF token in. */
export const CSRF_HEADER = 'x-hay-csrf';

/** The value of cookie `name` in a Cookie header, or undefined. Only the first occurrence counts. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value === '' ? undefined : value;
  }
  return undefined;
}

/**
 * A Set-Cookie value for the session: HttpOnly, SameSite=Strict, Path=/, Max-Age in seconds, and Secure
 * when the page was served over https. `maxAgeSeconds` 0 clears the cookie.
 */
export function sessionCookie(value: string, maxAgeSeconds: number, secure: boolean): string {
  return [
    `${SESSION_COOKIE}=${value}`,
    'Path=/',
    'HttpOnly',
    'SameSite=Strict',
    `Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
    ...(secure ? ['Secure'] : []),
  ].join('; ');
}
