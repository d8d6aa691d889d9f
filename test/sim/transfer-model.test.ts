/**
 * Model-based tests: @xstate/graph walks the transfer machine to one shortest path per
 * transition, and each path is driven through the real bank (channel, link, core, log) by
 * holding messages back and letting them through, crashing the channel, and moving time.
 */
import { getShortestPaths } from '@xstate/graph';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { AnyEventObject } from 'xstate';
import { createBank } from '../../src/bank.ts';
import { VirtualTime } from '../../src/lib/clock.ts';
import { seededRandom } from '../../src/lib/ids.ts';
import { transferMachine, TRANSFER_STATES, type TransferInput, type TransferState } from '../../src/machines/transfer.ts';
import type { LinkPipe, NetworkPolicy } from '../../src/net/link.ts';
import type { LinkRequest, LinkResponse } from '../../src/net/messages.ts';
import { checkInvariants } from '../../src/sim/invariants.ts';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const RESPONSE_TIMEOUT_MS = 3_000;
const after = (delay: string, state: string) => ({ type: `xstate.after.${delay}.transfer.${state}` });
const CANDIDATE_EVENTS: AnyEventObject[] = [
  { type: 'DISPATCH', at: 0 },
  { type: 'RESUME', at: 0 },
  { type: 'EXECUTED', at: 0, via: 'log', posting: null },
  { type: 'REJECTED', at: 0, via: 'log', reason: 'insufficient-funds' },
  { type: 'NOT_FOUND', at: 0 },
  after('untilResponseDeadline', 'sent'),
  after('untilNextQuery', 'timedOut'),
  after('untilQueryDeadline', 'querying'),
];

const input: TransferInput = {
  transferId: 'tr_model',
  fromAccountId: 1,
  toAccountId: 2,
  amountWon: 1,
  memo: null,
  requestedAt: 0,
  policy: { responseTimeoutMs: RESPONSE_TIMEOUT_MS, queryTimeoutMs: 3_000, backoffBaseMs: 1_000, backoffMaxMs: 30_000, queryNotBeforeAt: 0, queryAfterTimeout: true },
};

type Snap = ReturnType<typeof transferMachine.transition>;
const stateOfSnap = (s: Snap) => s.value as TransferState;

// One vertex per (state reached, event that reached it, whether a query was ever sent), so
// the shortest paths take every transition; NOT_FOUND is only offered once a query went out,
// as only then can the real core's answer to one arrive.
const paths = getShortestPaths(transferMachine, {
  input,
  events: (s: Snap) => CANDIDATE_EVENTS.filter((e) => s.can(e as never) && (e.type !== 'NOT_FOUND' || s.context.queryAttempts > 0)) as never,
  serializeState: (s: Snap, e: AnyEventObject | undefined, prev?: Snap) =>
    `${prev ? stateOfSnap(prev) : '-'}|${e?.type ?? 'init'}|${stateOfSnap(s)}|${s.context.queryAttempts > 0}`,
});

const edgeOf = (from: TransferState, type: string, to: TransferState) => `${from} --${type.replace(/^xstate\.after\.([^.]+)\..*$/, 'after:$1')}--> ${to}`;

/** Every transition the machine definition declares, from its own state nodes. */
function declaredEdges(): Set<string> {
  const edges = new Set<string>();
  for (const node of Object.values(transferMachine.root.states)) {
    for (const [type, transitions] of node.transitions) {
      for (const t of transitions) edges.add(edgeOf(node.key as TransferState, type, (t.target?.[0]?.key ?? node.key) as TransferState));
    }
  }
  return edges;
}

function walkedEdges(): Set<string> {
  const edges = new Set<string>();
  for (const p of paths) {
    let from: TransferState | null = null;
    for (const step of p.steps) {
      const to = stateOfSnap(step.state);
      if (from !== null) edges.add(edgeOf(from, step.event.type, to));
      from = to;
    }
  }
  return edges;
}

test('the generated paths reach every state and take every transition of the transfer machine', () => {
  const reached = new Set(paths.map((p) => stateOfSnap(p.state)));
  assert.equal([...reached].sort(), [...TRANSFER_STATES].sort());
  const declared = declaredEdges();
  assert.ok(declared.size >= 16, `the machine declares ${declared.size} transitions`);
  assert.equal([...walkedEdges()].filter((e) => declared.has(e)).sort(), [...declared].sort());
});

/** A network that holds every message until the test lets it through. */
class HeldNetwork implements NetworkPolicy {
  held: { pipe: LinkPipe; message: LinkRequest | LinkResponse }[] = [];
  private passing = 0;
  deliveries(pipe: LinkPipe, message: LinkRequest | LinkResponse): number[] {
    if (this.passing > 0) {
      this.passing--;
      return [0];
    }
    this.held.push({ pipe, message: structuredClone(message) });
    return [];
  }
  take(type: string): (LinkRequest | LinkResponse)[] {
    const taken = this.held.filter((h) => h.message.type === type).map((h) => h.message);
    this.held = this.held.filter((h) => h.message.type !== type);
    return taken;
  }
  pass(): void {
    this.passing++;
  }
}

function drive(path: (typeof paths)[number]): void {
  const time = new VirtualTime();
  const network = new HeldNetwork();
  const dataDir = mkdtempSync(join(tmpdir(), 'scrollbank-model-'));
  // Set to crash the channel right after its next commit, before that commit's effects leave.
  let crashAfterCommit = false;
  const onCommitted = (side: string) => {
    if (side !== 'channel' || !crashAfterCommit) return;
    crashAfterCommit = false;
    throw new Error('crash after the requested commit');
  };
  const bank = createBank({ dataDir, coreClock: time.clock(), channelClock: time.clock(), random: seededRandom(1), settings: { responseTimeoutMs: RESPONSE_TIMEOUT_MS }, synchronous: 'OFF', network, onCommitted });
  try {
    bank.start();
    const rejects = path.steps.some((s) => s.event.type === 'REJECTED');
    const open = (name: string, won: number) => {
      const { customerId, accountId } = bank.openCustomer(name, won);
      return { customerId, accountId };
    };
    const kim = open('Kim', 10_000);
    const lee = open('Lee', 0);
    time.advance(0);
    let id = '';
    const request = () => {
      const outcome = bank.channel.requestTransfer({ customerId: kim.customerId, fromAccountId: kim.accountId, toAccountId: lee.accountId, amountWon: rejects ? 20_000 : 1_000, memo: null, idempotencyKey: null });
      if (outcome.kind === 'created') id = outcome.transfer.id;
    };
    const deliver = (type: string, onward?: string) => {
      for (const m of network.take(type)) {
        network.pass();
        if (m.type === 'execute' || m.type === 'query') bank.link.request(m);
        else bank.link.respond(m as LinkResponse);
      }
      time.advance(0);
      if (onward !== undefined) deliver(onward);
    };
    const advanceUntilChanged = () => {
      const before = bank.channel.transfer(id)!.state;
      // One timer at a time: with the fence, timedOut asks at once, in the same instant.
      for (let fired = 0; bank.channel.transfer(id)!.state === before && fired < 1_000; fired++) time.fireNext();
      // Then the rest of that turn's batch: its commit, then its effects (the QUERY it sends).
      const channelDb = bank.channel.readModel().db;
      for (let fired = 0; channelDb.inTransaction && fired < 1_000; fired++) time.fireNext();
    };
    for (const [i, step] of path.steps.entries()) {
      const type = step.event.type;
      if (i === 0) continue; // xstate.init: the transfer does not exist yet
      if (type === 'DISPATCH') {
        request();
        time.advance(0); // the turn commits: stored, then sent
      } else if (type === 'RESUME' && id === '') {
        // The process dies between storing the request and sending it, then starts again.
        request();
        crashAfterCommit = true;
        assert.throws(() => time.advance(0), /crash after the requested commit/);
        id = bank.channel.readModel().inFlightFrom(kim.accountId)!;
        assert.is(bank.channel.transfer(id)?.state, 'requested', 'stored, never sent');
        bank.restart('channel');
        time.advance(0); // the deadline index hands it its DISPATCH at once
      } else if (type === 'RESUME') bank.restart('channel');
      else if (type === 'EXECUTED' || type === 'REJECTED') deliver('execute', 'execute-answer');
      else if (type === 'NOT_FOUND') deliver('query', 'query-answer');
      else advanceUntilChanged();
      assert.is(bank.channel.transfer(id)?.state, stateOfSnap(step.state), `after ${type} (step ${i} of ${path.steps.map((s) => s.event.type).join(', ')})`);
    }
    // Once the path is walked, everything held arrives and the bank must agree with itself.
    for (const type of ['execute', 'query', 'execute-answer', 'query-answer']) deliver(type);
    time.advance(200_000);
    const violations = checkInvariants(bank, [1, 2, 3, 5, 6, 7]);
    assert.equal(violations, [], JSON.stringify(violations));
  } finally {
    bank.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

for (const path of paths) {
  if (path.steps.length < 2) continue;
  const name = path.steps.slice(1).map((s) => `${s.event.type.replace(/^xstate\.after\.([^.]+)\..*$/, 'after:$1')} -> ${stateOfSnap(s.state)}`).join(', ');
  test(`the real service follows the model: ${name}`, () => drive(path));
}

test.run();
