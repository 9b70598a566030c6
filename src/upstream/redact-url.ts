/**
 * @module
 * Credentials in URLs (`http://user:pass@proxy:3128`, `https://token@host/repo.git`) never reach
 * a log line, `/health`, `--help` or an error message: every place that shows a URL an operator
 * configured shows it through {@link redactUrl}, and text that may quote one (undici's and git's
 * error messages) through {@link redactUrlsIn}.
 */

/** What replaces the password (or a lone user name, which is often a token). */
const HIDDEN = '***';

/**
 * The URL with its password replaced by `***` (a user name alone, often a token, is hidden the
 * same way). Anything that does not parse as a URL is passed through {@link redactUrlsIn}.
 */
export function redactUrl(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return redactUrlsIn(url);
  }
  if (parsed.username === '' && parsed.password === '') return url;
  if (parsed.password !== '') parsed.password = HIDDEN;
  else parsed.username = HIDDEN;
  return parsed.href.endsWith('/') && !url.endsWith('/') ? parsed.href.slice(0, -1) : parsed.href;
}

/** `scheme://user:pass@` or `scheme://token@` anywhere in a text. */
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/)([^\s/?#@'"]+)@/gi;

/** `text` with the credentials of every URL in it replaced by `***`. */
export function redactUrlsIn(text: string): string {
  return text.replace(USERINFO, (_match, scheme: string, userinfo: string) => {
    const colon = userinfo.indexOf(':');
    return colon === -1 ? `${scheme}${HIDDEN}@` : `${scheme}${userinfo.slice(0, colon)}:${HIDDEN}@`;
  });
}
