/**
 * The body limit over a real socket, where src/server/body.ts reads Node's request stream
 * itself (app.request() in the other tests takes the web-stream path): a chunked body with no
 * Content-Length is cut off at 16 KiB with a 413 the client receives, and nothing moves.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createBank } from '../../src/bank.ts';
import { createSystemClock } from '../../src/lib/clock.ts';
import { seededRandom } from '../../src/lib/ids.ts';
import { createApp } from '../../src/server/app.ts';
import { MAX_BODY_BYTES } from '../../src/server/schemas.ts';
import { closeServer, listen } from '../../bench/loopback.ts';

type Answer = { status: number; contentType: string; body: string };

/** A POST whose body goes out in the given chunks; no Content-Length unless one is given. */
function post(url: string, token: string, chunks: string[], contentLength?: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    if (contentLength !== undefined) headers['content-length'] = String(contentLength);
    // A connection of its own each: an answer given before its body was read leaves that connection unusable.
    const req = request(`${url}/transfers`, { method: 'POST', headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, contentType: String(res.headers['content-type']), body }));
    });
    // A server that answers early and closes may reset what is still being written: the answer counts.
    req.on("error", (e) => reject(new Error(`${chunks.length} chunks, content-length ${contentLength}: ${e.message}`)));
    for (const c of chunks) req.write(c);
    req.end();
  });
}

test('over a socket: a chunked body past 16 KiB gets its 413, a declared one too, and a normal one goes through', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-socket-'));
  const clock = createSystemClock();
  const bank = createBank({ dataDir, coreClock: clock, channelClock: clock, random: seededRandom(3), synchronous: 'OFF' });
  bank.start();
  const server = await listen(createApp({ bank, adminToken: 'admin-token-for-the-socket-test' }).fetch);
  try {
    const kim = bank.openCustomer('Kim', 100_000);
    const lee = bank.openCustomer('Lee', 0);
    await bank.durable();
    const json = JSON.stringify({ fromAccountId: kim.accountId, toAccountId: lee.accountId, amount: 1_000 });

    // 20 chunks of 1 KiB of spaces after the opening brace: valid JSON if it were allowed in.
    const chunked = await post(server.url, kim.token, ['{', ...Array.from({ length: 20 }, () => ' '.repeat(1024)), json.slice(1)]);
    assert.is(chunked.status, 413, chunked.body);
    assert.match(chunked.contentType, /application\/problem\+json/);
    assert.match(JSON.parse(chunked.body).detail, new RegExp(`${MAX_BODY_BYTES} bytes`));

    const honest = '{' + ' '.repeat(MAX_BODY_BYTES - json.length + 1) + json.slice(1);
    assert.is(Buffer.byteLength(honest), MAX_BODY_BYTES + 1);
    const declared = await post(server.url, kim.token, [honest], MAX_BODY_BYTES + 1);
    assert.is(declared.status, 413, declared.body);

    const broken = await post(server.url, kim.token, ['{"fromAccountId": '], undefined);
    assert.is(broken.status, 400, broken.body);
    assert.match(broken.contentType, /application\/problem\+json/);

    assert.is(bank.channel.readModel().allTransfers().length, 0, 'no refused body made a transfer');

    // The same path reads a body that is within the limit, in several chunks.
    const ok = await post(server.url, kim.token, [json.slice(0, 10), json.slice(10)]);
    assert.is(ok.status, 201, ok.body);
    assert.is(JSON.parse(ok.body).state, 'succeeded');
    assert.is(bank.core.readModel().getAccount(lee.accountId)?.balanceWon, 1_000);
  } finally {
    await closeServer(server.server);
    bank.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
