/**
 * What the app never sees, over a raw socket to the server src/main.ts runs: requests Node's
 * parser or the adapter refuse (the fuzzer's finds) are answered as problem+json with the
 * right status, not with an empty body.
 */
import { connect } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createBank, type Bank } from '../../src/bank.ts';
import { createSystemClock } from '../../src/lib/clock.ts';
import { seededRandom } from '../../src/lib/ids.ts';
import { createApp } from '../../src/server/app.ts';
import { closeServer, listen } from '../../bench/loopback.ts';

/** Writes `raw` as is and reads until the server closes or `ms` pass: the status, headers and body. */
function rawExchange(port: number, raw: string | Buffer, ms = 3_000): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    const done = () => {
      socket.destroy();
      const [head = '', ...rest] = data.split('\r\n\r\n');
      const [statusLine = '', ...lines] = head.split('\r\n');
      const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(':')).toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0);
      if (status === 0) reject(new Error(`no HTTP answer: ${JSON.stringify(data)}`));
      else resolve({ status, headers, body: rest.join('\r\n\r\n') });
    };
    const timer = setTimeout(done, ms);
    socket.on('data', (d) => {
      data += d.toString('latin1');
      // An answer with a body of its announced length is complete, whether the socket closes or not.
      const end = data.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(data.slice(0, end))?.[1];
      if (end >= 0 && length !== undefined && Buffer.byteLength(data.slice(end + 4), 'latin1') >= Number(length)) {
        clearTimeout(timer);
        done();
      }
    });
    socket.on('end', () => {
      clearTimeout(timer);
      done();
    });
    socket.on('error', () => {
      clearTimeout(timer);
      done();
    });
    socket.write(raw);
  });
}

/** A bank on the system clock behind the server src/main.ts runs, on a free port, for one test. */
async function withServer(seed: number, body: (bank: Bank, port: number) => Promise<void>): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-edge-'));
  const clock = createSystemClock();
  const bank = createBank({ dataDir, coreClock: clock, channelClock: clock, random: seededRandom(seed), synchronous: 'OFF' });
  bank.start();
  const { server, port } = await listen(createApp({ bank, adminToken: 'admin-token-for-the-edge-test' }).fetch);
  try {
    await body(bank, port);
  } finally {
    await closeServer(server);
    bank.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

test('requests refused below the app are problem+json with their status, never an empty answer', () =>
  withServer(5, async (_bank, port) => {
    const cases: [what: string, raw: string, status: number][] = [
      ['a 20 KiB header', `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, 431],
      ['a header line with no colon', 'GET /health HTTP/1.1\r\nHost: x\r\nnot a header\r\n\r\n', 400],
      ['a Content-Length that is not a number', 'POST /transfers HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n', 400],
      ['both Content-Length and Transfer-Encoding', 'POST /transfers HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 400],
      ['a Transfer-Encoding that does not end in chunked', 'POST /transfers HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, gzip\r\n\r\n', 400],
      ['a header value with DEL', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x7fb\r\n\r\n', 400],
      ['a header value with NUL', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n', 400],
      ['a header value with a bare CR', 'GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n', 400],
      ['Expect: teapot', 'GET /health HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n', 417],
      ['a path with backslashes and dots', 'GET /assets\\..\\package.json HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      ['a Host with a space', 'GET /health HTTP/1.1\r\nHost: a b\r\n\r\n', 400],
      ['OPTIONS *', 'OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n', 400],
    ];
    for (const [what, raw, status] of cases) {
      const answer = await rawExchange(port, raw);
      assert.is(answer.status, status, `${what}: ${answer.status} ${answer.body}`);
      assert.match(answer.headers['content-type'] ?? '', 'application/problem+json', what);
      const body = JSON.parse(answer.body);
      assert.is(body.status, status, what);
      assert.type(body.title, 'string', what);
      assert.ok(typeof body.detail === 'string' && body.detail.length > 0, what);
    }
    // And the server still answers a good request afterwards.
    const fine = await rawExchange(port, 'GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    assert.is(fine.status, 200);
  }));

test('a broken request behind an answer still being sent ends the connection, and writes nothing into that answer', () =>
  withServer(6, async (bank, port) => {
    const kim = bank.openCustomer('Kim', 100_000);
    const lee = bank.openCustomer('Lee', 0);
    bank.faults.add({ pipe: 'request', action: 'drop', count: 1, delayMs: 0 });
    const outcome = bank.channel.requestTransfer({ customerId: kim.customerId, fromAccountId: kim.accountId, toAccountId: lee.accountId, amountWon: 1, memo: null, idempotencyKey: null });
    assert.is(outcome.kind, 'created');
    await bank.durable();
    const id = outcome.kind === 'created' ? outcome.transfer.id : '';
    // An event stream (its answer stays open), then a request the parser refuses, on one connection.
    const data = await new Promise<string>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      let received = '';
      socket.on('data', (d) => {
        received += d.toString('latin1');
        if (received.includes('event: transfer') && !received.includes('BROKEN-SENT')) {
          received += 'BROKEN-SENT';
          socket.write('NOT HTTP AT ALL\r\n\r\n');
        }
      });
      socket.on('close', () => resolve(received));
      setTimeout(() => (socket.destroy(), resolve(received)), 2_000);
      socket.write(`GET /transfers/${id}/stream?access_token=${kim.token} HTTP/1.1\r\nHost: x\r\n\r\n`);
    });
    const [before, after = ''] = data.split('BROKEN-SENT');
    assert.match(before!, /^HTTP\/1\.1 200/);
    assert.not.match(after, 'HTTP/1.1', `nothing was written into the stream: ${JSON.stringify(after)}`);
  }));

test.run();
