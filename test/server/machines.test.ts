/**
 * GET /machines and /machines/:name: every machine listed with its states, each definition
 * served as data a fresh XState (and so the Stately editor) can rebuild the same machine from.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createActor, createMachine, type AnyActorRef, type InspectionEvent } from 'xstate';
import { createApp, type App } from '../../src/server/app.ts';
import { TRANSFER_STATES } from '../../src/machines/transfer.ts';
import { makeBank, openCustomer, run, transfer, createdId, type TestBank, drivenApp } from '../helpers.ts';

type Ctx = { bank: TestBank; app: App };
const test = suite<Ctx>('machines', {} as Ctx);

test.before.each((ctx) => {
  ctx.bank = makeBank();
  ctx.app = drivenApp(ctx.bank, createApp({ bank: ctx.bank, adminToken: 'admin-token-for-tests-0001' }));
});
test.after.each((ctx) => ctx.bank.dispose());

const getJson = async (ctx: Ctx, path: string) => {
  const response = await ctx.app.request(path);
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.json() };
};

test('GET /machines lists every machine with its states and where to fetch it', async (ctx) => {
  const reply = await getJson(ctx, '/machines');
  assert.is(reply.status, 200);
  assert.equal(reply.body, [
    { name: 'transfer', states: [...TRANSFER_STATES], url: '/machines/transfer' },
    { name: 'coreBanking', states: ['serving'], url: '/machines/coreBanking' },
  ]);
});

test('the transfer definition names its targets, guards, actions and delays as the code does', async (ctx) => {
  const { body } = await getJson(ctx, '/machines/transfer');
  assert.is(body.id, 'transfer');
  assert.is(body.initial, 'requested');
  assert.equal(body.states.requested.on.DISPATCH, { target: 'sent', actions: ['armResponseDeadline', 'sendExecute'] });
  assert.equal(body.states.timedOut.after.untilNextQuery, { guard: 'queryAfterTimeout', target: 'querying', actions: ['armQueryDeadline', 'sendQuery'] });
  assert.is(body.states.succeeded.type, 'final');
  assert.is(body.states.failed.type, 'final');
  assert.is(body.context, undefined, 'the context factory is code, not data');
});

test('the core definition keeps each refusal as a named action with its reason', async (ctx) => {
  const { body } = await getJson(ctx, '/machines/coreBanking');
  const execute = body.states.serving.on.EXECUTE as { guard?: string; actions: unknown }[];
  assert.equal(execute.find((t) => t.guard === 'pastCutoff')?.actions, { type: 'reject', params: { reason: 'past-cutoff' } });
  assert.equal(execute.map((t) => t.guard ?? null), ['alreadyDecided', 'fenced', 'pastCutoff', 'futureDated', 'invalidAmount', 'sameAccount', 'unknownAccount', 'insufficientFunds', null]);
});

test('a machine rebuilt from the served JSON walks the same path as the real one', async (ctx) => {
  const { body } = await getJson(ctx, '/machines/transfer');
  // What the Stately editor does on import: createMachine(config), implementations by name.
  const rebuilt = createMachine(body, {
    guards: { queryAfterTimeout: () => true },
    delays: { untilResponseDeadline: 1000, untilNextQuery: 0, untilQueryDeadline: 1000 },
  });
  const actor = createActor(rebuilt).start();
  const path = [actor.getSnapshot().value];
  for (const type of ['DISPATCH', 'NOT_FOUND', 'EXECUTED']) {
    actor.send({ type });
    path.push(actor.getSnapshot().value);
  }
  assert.equal(path, ['requested', 'sent', 'sent', 'succeeded'], 'NOT_FOUND means nothing while sent');
});

test('?format=code answers createMachine(...) text for the Stately editor', async (ctx) => {
  const response = await ctx.app.request('/machines/transfer?format=code');
  assert.is(response.status, 200);
  const text = await response.text();
  assert.ok(text.startsWith('createMachine({'), text.slice(0, 40));
  assert.equal(JSON.parse(text.slice('createMachine('.length, text.lastIndexOf(')'))), (await getJson(ctx, '/machines/transfer')).body);
  const bad = await getJson(ctx, '/machines/transfer?format=yaml');
  assert.is(bad.status, 400);
  assert.ok(bad.type.startsWith('application/problem+json'));
});

test('an unknown machine is a 404 problem', async (ctx) => {
  const reply = await getJson(ctx, '/machines/ledger');
  assert.is(reply.status, 404);
  assert.ok(reply.type.startsWith('application/problem+json'));
  assert.match(reply.body.detail, 'ledger');
});

test('INSPECT hands every actor to the inspector: each transfer, again after a restart, and the core', () => {
  const seen: string[] = [];
  const inspect = (e: InspectionEvent) => {
    const id = (e.actorRef as AnyActorRef).id;
    if (e.type === '@xstate.actor') seen.push(`actor ${id}`);
    if (e.type === '@xstate.snapshot' && id !== 'coreBanking') seen.push(`snapshot ${id} ${String((e.snapshot as { value?: unknown }).value)} ${e.event.type}`);
  };
  const bank = makeBank({ inspect });
  try {
    const kim = openCustomer(bank, 'Kim', 10_000);
    const lee = openCustomer(bank, 'Lee', 0);
    bank.faults.add({ pipe: 'request', action: 'delay', count: 1, delayMs: 500 });
    const id = createdId(transfer(bank, kim, lee, 1_000));
    run(bank); // the turn commits: stored, then sent
    bank.restart('channel');
    run(bank, 1_000);
    assert.equal(seen, [
      'actor coreBanking',
      `actor ${id}`,
      `snapshot ${id} requested xstate.init`,
      `snapshot ${id} sent DISPATCH`,
      // The crash: a durable transfer has no live actor to stop, and its restore commits and
      // shows nothing. It is announced again in the new life when it next moves.
      `actor ${id}`,
      `snapshot ${id} succeeded EXECUTED`,
    ]);
  } finally {
    bank.dispose();
  }
});

test.run();
