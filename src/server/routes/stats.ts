/**
 * @module
 * Statistics over HTTP: `GET /api/v1/stats` (the full summary as JSON), `GET /stats.json` (the
 * seed's four numbers, for scripts written against it) and `GET /metrics` (Prometheus).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../config.ts';
import type { Stats } from '../../stats/stats.ts';
import { seedStats } from '../../stats/summary.ts';
import { publicUrlFor } from '../public-url.ts';

/** Registers the statistics routes. */
export function registerStatsRoutes(
  app: FastifyInstance,
  stats: Stats,
  config: Readonly<Config>,
): void {
  app.get<{ Querystring: { minutes?: string; days?: string } }>(
    '/api/v1/stats',
    async function statsSummary(request, reply) {
      request.cacher.kind = 'api';
      const summary = await stats.summary({
        ...publicUrlOption(request, config),
        gitEnabled: config.git.enabled,
        ...numberOption('minutes', request.query.minutes),
        ...numberOption('days', request.query.days),
      });
      return reply.header('cache-control', 'no-store').send(summary);
    },
  );

  app.get('/stats.json', async function seedStatsJson(request, reply) {
    request.cacher.kind = 'api';
    const summary = await stats.summary({ minutes: 1, days: 1 });
    return reply.header('cache-control', 'no-store').send(seedStats(summary));
  });

  app.get('/metrics', async function metrics(request, reply) {
    request.cacher.kind = 'api';
    const text = await stats.metrics.text();
    return reply
      .header('content-type', stats.metrics.contentType)
      .header('cache-control', 'no-store')
      .send(text);
  });
}

/** The public URL for the config snippets; none when the Host header cannot make one. */
function publicUrlOption(request: FastifyRequest, config: Readonly<Config>) {
  try {
    return { publicUrl: publicUrlFor(request, config.publicUrl) };
  } catch {
    return {};
  }
}

function numberOption(name: 'minutes' | 'days', value: string | undefined) {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) ? { [name]: n } : {};
}
