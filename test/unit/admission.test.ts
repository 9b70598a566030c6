import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { type AdmissionGate, admissionOf, refuse } from '../../src/server/admission.ts';
import { parseTokenFile } from '../../src/server/auth.ts';

const TOKENS = parseTokenFile('reader-token read\nadmin-token admin\n');

function gate(overrides: Partial<AdmissionGate> = {}): AdmissionGate {
  return { tokens: TOKENS, closing: () => false, ...overrides };
}

describe('admission', () => {
  test('admits everything without a token file, until the server closes', () => {
    const open = gate({ tokens: undefined });
    assert.equal(admissionOf(open, 'GET', '/index/se/rd/serde', undefined), 'admitted');
    assert.equal(admissionOf(open, 'POST', '/api/v1/prefetch', undefined), 'admitted');
    const closing = gate({ tokens: undefined, closing: () => true });
    assert.equal(admissionOf(closing, 'GET', '/index/se/rd/serde', undefined), 'closing');
  });

  test('a closing server refuses before any token is looked at', () => {
    const closing = gate({ closing: () => true });
    assert.equal(admissionOf(closing, 'GET', '/index/se/rd/serde', 'reader-token'), 'closing');
    assert.equal(admissionOf(closing, 'GET', '/health', undefined), 'closing');
  });

  test('with a token file, needs a valid token everywhere but /health', () => {
    assert.equal(admissionOf(gate(), 'GET', '/health', undefined), 'admitted');
    assert.equal(admissionOf(gate(), 'GET', '/health?x=1', undefined), 'admitted');
    assert.equal(admissionOf(gate(), 'GET', '/healthz', undefined), 'unauthorized');
    assert.equal(admissionOf(gate(), 'GET', '/index/se/rd/serde', undefined), 'unauthorized');
    assert.equal(admissionOf(gate(), 'GET', '/index/se/rd/serde', 'wrong'), 'unauthorized');
    assert.equal(admissionOf(gate(), 'GET', '/index/se/rd/serde', 'reader-token'), 'admitted');
    assert.equal(admissionOf(gate(), 'GET', '/metrics', 'Bearer reader-token'), 'admitted');
  });

  test('changing requests need an admin token; git fetch negotiation is a read', () => {
    assert.equal(admissionOf(gate(), 'POST', '/api/v1/prefetch', 'reader-token'), 'forbidden');
    assert.equal(admissionOf(gate(), 'POST', '/api/v1/prefetch', 'admin-token'), 'admitted');
    const basic = `Basic ${Buffer.from('git:reader-token').toString('base64')}`;
    assert.equal(admissionOf(gate(), 'POST', '/index/git-upload-pack', basic), 'admitted');
    assert.equal(admissionOf(gate(), 'HEAD', '/index/se/rd/serde', 'reader-token'), 'admitted');
  });
});

describe('refusals from the onRequest hook', () => {
  function appWith(admissionGate: AdmissionGate): FastifyInstance {
    const app = Fastify();
    app.addHook('onRequest', (request, reply, done) => {
      const verdict = admissionOf(
        admissionGate,
        request.method,
        request.url,
        request.headers.authorization,
      );
      if (verdict === 'admitted') return done();
      refuse(verdict, request, reply, done, 'http://proxy.example');
    });
    app.get('/index/*', async () => 'index file');
    return app;
  }

  test('a closing server answers 503 as fastify itself does, and ends the connection', async () => {
    const app = appWith(gate({ closing: () => true }));
    const res = await app.inject({ method: 'GET', url: '/no/such/route' });
    assert.equal(res.statusCode, 503);
    assert.equal(res.headers.connection, 'close');
    assert.deepEqual(res.json(), {
      error: 'Service Unavailable',
      message: 'Service Unavailable',
      statusCode: 503,
    });
    await app.close();
  });

  test('a missing token gets 401 with cargo login challenge; a read token posting gets 403', async () => {
    const app = appWith(gate());
    const missing = await app.inject({ method: 'GET', url: '/index/se/rd/serde' });
    assert.equal(missing.statusCode, 401);
    assert.equal(missing.headers['www-authenticate'], 'Cargo login_url="http://proxy.example/"');
    const reader = { authorization: 'reader-token' };
    const post = await app.inject({ method: 'POST', url: '/index/x', headers: reader });
    assert.equal(post.statusCode, 403);
    const read = await app.inject({ method: 'GET', url: '/index/se/rd/serde', headers: reader });
    assert.equal(read.statusCode, 200);
    assert.equal(read.body, 'index file');
    await app.close();
  });
});
