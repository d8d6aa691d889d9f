/**
 * The statechart the pages draw, without a browser: every transition of the served config
 * becomes a labelled edge, and elkjs places every state somewhere of its own.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { machineConfigJson } from '../../src/server/routes/machines.ts';
import { coreBankingMachine } from '../../src/machines/core-banking.ts';
import { transferMachine } from '../../src/machines/transfer.ts';
import { edgesOf, layoutMachine, type MachineConfig } from '../../src/web/statechart.ts';

const transfer = machineConfigJson(transferMachine) as MachineConfig;

test('every transfer transition is an edge, parallel ones sharing one arrow and guards shown', () => {
  const edges = new Map(edgesOf(transfer).map((e) => [`${e.from}->${e.to}`, e.labels]));
  assert.equal(edges.get('requested->sent'), ['DISPATCH', 'RESUME']);
  // Delayed events by the journal's names for them, so the chart and the journal read alike.
  assert.equal(edges.get('timedOut->querying'), ['QUERY_DUE [queryAfterTimeout]']);
  assert.equal(edges.get('sent->timedOut'), ['RESPONSE_TIMEOUT']);
  assert.equal(edges.get('querying->failed'), ['REJECTED', 'NOT_FOUND']);
  assert.equal(edges.get('sent->sent'), ['RESUME']);
  assert.is(edges.has('succeeded->failed'), false);
  const count = edgesOf(transfer).reduce((n, e) => n + e.labels.length, 0);
  assert.is(count, 16, 'two from requested, four from sent, five each from timedOut and querying');
});

test('a core EXECUTE with a guarded list keeps every guard, in order, as one self-loop', () => {
  const [loop, ...rest] = edgesOf(machineConfigJson(coreBankingMachine) as MachineConfig);
  assert.is(rest.length, 0);
  assert.is(loop!.from, 'serving');
  assert.is(loop!.to, 'serving');
  assert.equal(loop!.labels.slice(0, 3), ['EXECUTE [alreadyDecided]', 'EXECUTE [fenced]', 'EXECUTE [pastCutoff]']);
  assert.ok(loop!.labels.includes('after pruneInterval'));
});

test('elkjs lays out the six transfer states apart, with a route for every edge', async () => {
  const graph = await layoutMachine(transfer);
  const states = (graph.children ?? []).filter((c) => c.id !== '__initial');
  assert.equal(states.map((s) => s.id).sort(), ['failed', 'querying', 'requested', 'sent', 'succeeded', 'timedOut']);
  const overlaps = states.flatMap((a, i) =>
    states.slice(i + 1).filter((b) => a.x! < b.x! + b.width! && b.x! < a.x! + a.width! && a.y! < b.y! + b.height! && b.y! < a.y! + a.height!).map((b) => `${a.id}/${b.id}`),
  );
  assert.equal(overlaps, []);
  const edges = graph.edges as { sections?: unknown[] }[];
  assert.ok(edges.every((e) => (e.sections ?? []).length > 0), 'every edge is routed');
});

test.run();
