/**
 * @module
 * `buildApp(deps)`: the HTTP application, built from injected services so tests can run
 * several instances side by side. Routes are thin; the caches do the work.
 */
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { ApiCache } from '../cache/api-cache.ts';
import type { CrateCache } from '../cache/crate-cache.ts';
import type { IndexCache } from '../cache/index-cache.ts';
import { IndexVariants, type IndexView } from '../cache/index-variants.ts';
import type { RegistryConfigService } from '../cache/registry-config-service.ts';
import type { StorageHealth } from '../cache/storage-guard.ts';
import type { ToolchainCache } from '../cache/toolchain-cache.ts';
import type { Config } from '../config.ts';
import { type CacherError, Errors, isCacherError } from '../errors.ts';
import type { GitMirror } from '../git/git-mirror.ts';
import type { JobRegistry } from '../jobs/job.ts';
import type { Prefetcher } from '../jobs/prefetcher.ts';
import type { RemovalPurger } from '../jobs/removals.ts';
import type { AppLogger } from '../logger.ts';
import type { RequestObserver, RequestOutcome } from '../observe/records.ts';
import type { LivePolicy } from '../policy/live-policy.ts';
import type { Stats } from '../stats/stats.ts';
import type { BlobStore } from '../storage/blob-store.ts';
import type { SparseUpstream } from '../upstream/sparse-index.ts';
import { describeUpstreamProxy } from '../upstream/upstream-proxy.ts';
import { VERSION } from '../version.ts';
import { type AdmissionGate, admissionOf, refuse } from './admission.ts';
import { roleOfHeader, type TokenTable } from './auth.ts';
import { ConnectionGuard, resolveClientLimits } from './connection-guard.ts';
import { createFastIndexPath } from './fast-index.ts';
import { serverFactoryWith } from './http-server.ts';
import { endsWithRefusal, hasOneHost } from './refusal.ts';
import { cacheStatusHeader, newRequestOutcome, recordRequest } from './request-context.ts';
import { registerCrateRoutes } from './routes/crates.ts';
import { registerDashboardRoutes } from './routes/dashboard.ts';
import { registerGitRoutes } from './routes/git.ts';
import { registerJobRoutes } from './routes/jobs.ts';
import { registerPolicyRoutes } from './routes/policy.ts';
import { registerRegistryApiRoutes } from './routes/registry-api.ts';
import { registerSparseIndexRoutes } from './routes/sparse-index.ts';
import { registerStatsRoutes } from './routes/stats.ts';
import { registerToolchainRoutes, toolchainHealth } from './routes/toolchains.ts';
import { closeSessionsOnClose, type TlsCredentials, tlsServerOptions } from './tls.ts';
import { TokenFile } from './token-file.ts';

/** Everything the routes use. */
export interface AppServices {
  config: Readonly<Config>;
  log: AppLogger;
  store: BlobStore;
  index: IndexCache;
  crates: CrateCache;
  registryConfig: RegistryConfigService;
  /** Hot index files and their gzip variants. */
  indexVariants: IndexVariants;
  jobs: JobRegistry;
  prefetcher: Prefetcher;
  git?: GitMirror;
  /** Upstream hosts that failed lately, with their circuit breaker state. */
  circuits?: () => { host: string; state: string; failures: number; lastError?: string }[];
  /** Whether storage takes writes; `problem` says why not (errno and path). */
  storageHealth?: () => StorageHealth;
  /** Index files as the supply-chain policy lets them be served (`cache/policy-view.ts`). */
  indexView?: IndexView;
  /** Purges versions upstream removed (absent with `--keep-removed`). */
  removals?: RemovalPurger;
  /** The supply-chain policy in force (`GET /api/v1/policy`). */
  policy?: LivePolicy;
  /** The registry API (search, crate metadata) through the cache; writes are refused anyway. */
  registryApi?: ApiCache;
  /** The upstream sparse index, when there is one (a reload changes its URLs). */
  sparse?: SparseUpstream;
  /** rustup's dist server (`/dist`, `/rustup`). */
  toolchains?: ToolchainCache;
}

/** Kept for src/instance.ts, which imports it from here; the type lives in observe/records.ts. */

/** The dependencies of {@link buildApp}. */
export interface AppDeps extends Omit<AppServices, 'indexVariants'> {
  observers?: RequestObserver[];
  /** Statistics: serves `/api/v1/stats`, `/stats.json`, `/metrics` and the dashboard at `/`. */
  stats?: Stats;
  /** Serve HTTPS with HTTP/2 via ALPN and HTTP/1.1 on the same port. */
  tls?: TlsCredentials;
  /** Connection caps and client deadlines; built from `config.clientLimits` when not given. */
  connections?: ConnectionGuard;
  /** The tokens in force (a reload reads the file again); read from `config` when not given. */
  tokens?: TokenFile;
}

/** Builds the fastify application. Call `listen` on the result to serve. */
export function buildApp(deps: AppDeps): FastifyInstance {
  const observers = deps.observers ?? [];
  const tokenFile =
    deps.tokens ??
    (deps.config.authTokenFile === undefined
      ? undefined
      : TokenFile.load(deps.config.authTokenFile));
  let closing = false;
  // One gate for both ways in: the fast path answers only what it admits, fastify's
  // onRequest hook below answers every refusal.
  const gate: AdmissionGate = {
    get tokens() {
      return tokenFile?.table;
    },
    closing: () => closing,
  };
  const indexVariants = new IndexVariants(deps.index, undefined, deps.indexView);
  const fastPath = createFastIndexPath({ variants: indexVariants, gate, observers, log: deps.log });
  const connections =
    deps.connections ??
    new ConnectionGuard(resolveClientLimits(deps.config.clientLimits), deps.log);
  const app = Fastify({
    loggerInstance: deps.log as unknown as FastifyBaseLogger,
    // One debug line per request comes from the onResponse hook below instead.
    logController: new LogController({ disableRequestLogging: true }),
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 256 },
    // No 'upgrade' listener is ever registered: cargo sends `Upgrade: h2c` on every plain
    // HTTP request and must get an ordinary HTTP/1.1 answer.
    ...(deps.tls && tlsServerOptions(deps.tls)),
    serverFactory: serverFactoryWith(fastPath, deps.tls, connections),
  }) as unknown as FastifyInstance;
  app.addHook('preClose', (done) => {
    closing = true;
    done();
  });
  if (deps.tls) closeSessionsOnClose(app);
  const services: AppServices = { ...deps, indexVariants };

  app.decorateRequest('cacher', null as unknown as RequestOutcome);
  // Callback style, not async: this runs for every request, and a promise per hook shows up in
  // profiles of hot index and crate requests.
  app.addHook('onRequest', (request, reply, done) => {
    request.cacher = newRequestOutcome();
    // 'close' rather than fastify's onResponse, which waits for 'finish': when a client closes
    // its connection as soon as it has the last byte, 'finish' often never comes (measured: 7%
    // of crate downloads on one-request connections), and observers would miss those requests.
    reply.raw.once('close', () => recordFinished(request, reply, observers));
    // Two Host headers make the request mean different things to different readers (a proxy
    // in front may route by the other one): RFC 9112 3.2 says to answer 400.
    if (!hasOneHost(request.raw.rawHeaders)) {
      done(Errors.CARGO_CACHER_BAD_REQUEST('the request has more than one Host header'));
      return;
    }
    // After the 'close' listener, so a refused request is still recorded; before every route.
    const verdict = admissionOf(gate, request.method, request.url, request.headers.authorization);
    if (verdict !== 'admitted') {
      refuse(verdict, request, reply, done, deps.config.publicUrl);
      return;
    }
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    request.cacher.ttfbMs ??= reply.elapsedTime;
    endsWithRefusal(request.raw, reply);
    done(null, payload);
  });

  app.setErrorHandler(function handleError(error: FastifyError | CacherError, request, reply) {
    const status = statusOf(error);
    if (status >= 500 && !isCacherError(error)) request.log.error({ err: error }, 'request failed');
    // One line per upstream failure that reached a client; an open circuit was logged when it
    // opened, so the requests it turns away are not.
    if (status >= 500 && isCacherError(error)) {
      const level = error.code === 'CARGO_CACHER_UPSTREAM_CIRCUIT_OPEN' ? 'debug' : 'warn';
      request.log[level]({ code: error.code, url: request.url }, error.message);
    }
    if (request.cacher.outcome === undefined) {
      request.cacher.outcome = status === 404 ? 'not-found' : 'error';
    }
    if (error.code) request.cacher.errorCode = error.code;
    const kind = request.cacher.kind;
    if (kind === 'sparse-index' || kind === 'crate' || kind === 'toolchain') {
      reply.header('x-cache-status', cacheStatusHeader(request.cacher.outcome));
    }
    if (isCacherError(error) && error.retryAfter !== undefined) {
      reply.header('retry-after', String(error.retryAfter));
    }
    // cargo's error shape (Registry Web API): it prints `detail` for API calls, and the raw body
    // for index and download failures, so the text reads well either way.
    return reply
      .code(status)
      .type('application/json')
      .send({ errors: [{ detail: error.message, code: error.code }] });
  });
  app.setNotFoundHandler(function notFound(request, reply) {
    request.cacher.outcome = 'not-found';
    return reply.code(404).send({ errors: [{ detail: `no route for ${request.url}` }] });
  });

  app.get('/health', async function health(request) {
    // Hosts that failed lately; `open` ones are not asked until their cool-down ends.
    const upstreams = deps.circuits?.() ?? [];
    const storage = deps.storageHealth?.() ?? { writable: true };
    // Still HTTP 200 when degraded: cached content keeps flowing, so a load balancer should
    // keep sending traffic; monitoring reads `status`.
    const degraded = !storage.writable || upstreams.some((circuit) => circuit.state === 'open');
    const status = degraded ? 'degraded' : 'ok';
    // Without a token, a load balancer learns the status and nothing an attacker could use:
    // storage paths and upstream error texts are for token holders.
    if (!mayReadDetails(gate.tokens, request.headers.authorization)) return { status };
    return {
      status,
      version: VERSION,
      storage: deps.store.location,
      storageWritable: storage.writable,
      ...(storage.problem !== undefined && { problems: [storage.problem] }),
      offline: deps.config.offline,
      upstreams,
      // How upstreams are reached: the proxy (its password hidden) and the extra CA file.
      upstreamProxy: describeUpstreamProxy(deps.config.upstreamNetwork.proxy),
      ...(deps.config.upstreamNetwork.caFile !== undefined && {
        upstreamCa: deps.config.upstreamNetwork.caFile,
      }),
      git: deps.git ? deps.git.status() : { enabled: false },
      rustup: toolchainHealth(deps.toolchains, upstreams),
    };
  });
  registerSparseIndexRoutes(app, services);
  registerCrateRoutes(app, services);
  registerRegistryApiRoutes(app, deps.registryApi);
  if (deps.toolchains) registerToolchainRoutes(app, deps.toolchains);
  registerGitRoutes(app, deps.git);
  if (deps.stats) {
    registerStatsRoutes(app, deps.stats, deps.config);
    registerDashboardRoutes(app);
  }
  registerJobRoutes(app, deps.jobs, deps.prefetcher);
  if (deps.policy) registerPolicyRoutes(app, deps.policy);
  return app;
}

/** With tokens on, only a valid token sees /health's details. */
function mayReadDetails(
  tokens: TokenTable | undefined,
  authorization: string | undefined,
): boolean {
  return tokens === undefined || roleOfHeader(tokens, authorization) !== undefined;
}

function statusOf(error: { statusCode?: number }): number {
  const status = error.statusCode;
  return status !== undefined && status >= 400 && status <= 599 ? status : 500;
}

/** Records a request fastify answered (or that was abandoned), once its response closed. */
function recordFinished(
  request: FastifyRequest,
  reply: FastifyReply,
  observers: readonly RequestObserver[],
): void {
  // Not `writableEnded`: a client that has Content-Length bytes may close before the stream
  // piping them ends. A download abandoned halfway therefore counts as sent.
  const aborted = !reply.raw.headersSent;
  const exchange = {
    method: request.method,
    httpVersion: request.raw.httpVersion,
    url: request.url,
    status: reply.statusCode,
    bytesSent: aborted ? 0 : Number(reply.getHeader('content-length') ?? 0),
    durationMs: reply.elapsedTime,
    aborted,
  };
  recordRequest(request.cacher, exchange, observers, request.log);
}
