import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import type { UpstreamTimeouts } from '../../src/config.ts';
import type { HttpClient } from '../../src/upstream/http-client.ts';
import { LiveHttpClient } from '../../src/upstream/live-http-client.ts';

/** A client that answers with the timeouts it was made with, and whose close can be held. */
function fakeClients() {
  const made: { timeouts: UpstreamTimeouts; closed: boolean; finishClose: () => void }[] = [];
  const make = (timeouts: UpstreamTimeouts): HttpClient => {
    let finishClose: () => void = () => undefined;
    const closing = new Promise<void>((resolve) => {
      finishClose = resolve;
    });
    const entry = { timeouts, closed: false, finishClose: () => finishClose() };
    made.push(entry);
    return {
      get: async () => ({
        status: 200,
        headers: {},
        body: Readable.from([JSON.stringify(timeouts)]),
      }),
      close: async () => {
        entry.closed = true;
        await closing;
      },
    };
  };
  return { made, make };
}

const T1 = { connectMs: 1000, headersMs: 2000, bodyMs: 3000 };
const T2 = { connectMs: 1000, headersMs: 9000, bodyMs: 3000 };

async function answer(client: HttpClient): Promise<unknown> {
  const response = await client.get('http://upstream.invalid/x');
  let text = '';
  for await (const chunk of response.body) text += String(chunk);
  return JSON.parse(text);
}

test('new timeouts: later requests use a new client, the old one is closed gracefully', async () => {
  const { made, make } = fakeClients();
  const client = new LiveHttpClient(make, T1);
  assert.deepEqual(await answer(client), T1);
  client.setTimeouts({ ...T1 });
  assert.equal(made.length, 1, 'the same timeouts make no new client');

  client.setTimeouts(T2);
  assert.equal(made.length, 2);
  assert.deepEqual(client.timeouts, T2);
  assert.deepEqual(await answer(client), T2);
  assert.equal(made[0]?.closed, true, 'the old client is closing (it finishes what it carries)');

  // close() waits for the retired client's close too.
  let closed = false;
  const closing = client.close().then(() => {
    closed = true;
  });
  made[1]?.finishClose();
  await new Promise((resolve) => setImmediate(resolve));
  assert.equal(closed, false, 'still waiting for the old client');
  made[0]?.finishClose();
  await closing;
  assert.equal(closed, true);
});
