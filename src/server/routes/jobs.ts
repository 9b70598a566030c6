/**
 * @module
 * Background jobs over HTTP: `POST /api/v1/prefetch` with a Cargo.lock (any format) or
 * `name=version` lines starts a prefetch; `GET /api/v1/jobs/{id}` shows its progress and, when
 * done, the per-package report; `GET /api/v1/jobs` lists recent jobs.
 */
import type { FastifyInstance } from 'fastify';
import { Errors } from '../../errors.ts';
import type { JobRegistry } from '../../jobs/job.ts';
import { mergeInputs } from '../../jobs/prefetch-input.ts';
import type { Prefetcher } from '../../jobs/prefetcher.ts';

/** A Cargo.lock of a large workspace is well under a megabyte. */
const MAX_PREFETCH_BODY = 16 * 1024 * 1024;

/** Registers the job routes. */
export function registerJobRoutes(
  app: FastifyInstance,
  jobs: JobRegistry,
  prefetcher: Prefetcher,
): void {
  app.get('/api/v1/jobs', async function listJobs(request) {
    request.cacher.kind = 'api';
    return { jobs: jobs.list() };
  });

  app.get<{ Params: { id: string } }>('/api/v1/jobs/:id', async function showJob(request) {
    request.cacher.kind = 'api';
    const job = jobs.get(request.params.id);
    if (!job) throw Errors.CARGO_CACHER_NOT_FOUND(`no job ${request.params.id}`);
    return job.snapshot(true);
  });

  // Any content type: `curl --data-binary @Cargo.lock` sends a form type, others send text.
  app.register(function prefetchScope(scope, _options, done) {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      '*',
      { parseAs: 'string', bodyLimit: MAX_PREFETCH_BODY },
      (_req, body, done) => done(null, body),
    );
    scope.post('/api/v1/prefetch', async function startPrefetch(request, reply) {
      request.cacher.kind = 'api';
      const text = typeof request.body === 'string' ? request.body : '';
      if (text.trim() === '') {
        throw Errors.CARGO_CACHER_BAD_REQUEST(
          'send a Cargo.lock or name=version lines as the body',
        );
      }
      const job = prefetcher.start(
        mergeInputs([{ file: 'request body', text }]),
        'prefetch over HTTP',
      );
      return reply
        .code(202)
        .header('location', `/api/v1/jobs/${job.id}`)
        .send({ id: job.id, url: `/api/v1/jobs/${job.id}`, total: job.counts.total });
    });
    done();
  });
}
