/**
 * @module
 * The dashboard at `/` and `/stats`: one self-contained HTML file (inline CSS and script, no
 * fonts or libraries from anywhere else) that draws `/api/v1/stats`. A Content-Security-Policy
 * built from the hashes of its own inline blocks holds it to that: the browser refuses any
 * other script, style or host.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * The page, next to this module's folder in both layouts: `src/server/dashboard/index.html`
 * when run from source, `dist/server/dashboard/index.html` once built (the build copies it).
 */
export const DASHBOARD_FILE = new URL('../dashboard/index.html', import.meta.url);

/** The page and the policy that allows exactly its inline blocks. */
export interface DashboardPage {
  html: string;
  csp: string;
}

/** Loads the page and computes its Content-Security-Policy. */
export function loadDashboard(file: URL = DASHBOARD_FILE): DashboardPage {
  const html = readFileSync(file, 'utf8');
  return { html, csp: contentSecurityPolicy(html) };
}

/** A policy allowing the page's own inline `<script>` and `<style>` blocks, and nothing else. */
export function contentSecurityPolicy(html: string): string {
  const hashes = (tag: string) =>
    [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))]
      .map(
        (match) =>
          `'sha256-${createHash('sha256')
            .update(match[1] ?? '')
            .digest('base64')}'`,
      )
      .join(' ');
  return [
    "default-src 'none'",
    `script-src ${hashes('script')}`,
    `style-src ${hashes('style')}`,
    "connect-src 'self'",
    "img-src 'self' data:",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/** Registers `GET /` and `GET /stats`. The file is read once, at registration. */
export function registerDashboardRoutes(app: FastifyInstance, page = loadDashboard()): void {
  const serve = async function dashboard(request: FastifyRequest, reply: FastifyReply) {
    request.cacher.kind = 'api';
    return reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('content-security-policy', page.csp)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .header('cache-control', 'no-cache')
      .send(page.html);
  };
  app.get('/', serve);
  app.get('/stats', serve);
}
