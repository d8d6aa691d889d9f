/**
 * /machines/*: the XState definitions as JSON, for the Stately visualizer.
 */
import { Hono } from 'hono';
import { coreBankingMachine } from '../../machines/core-banking.ts';
import { transferMachine } from '../../machines/transfer.ts';
import { notFound } from '../problem.ts';

export const MACHINES = { transfer: transferMachine, coreBanking: coreBankingMachine } as const;

export function machineRoutes() {
  const app = new Hono();
  app.get('/:name', (c) => {
    const name = c.req.param('name');
    const machine = Object.hasOwn(MACHINES, name) ? MACHINES[name as keyof typeof MACHINES] : undefined;
    if (machine === undefined) throw notFound(`no machine named ${name}`);
    return c.json(machine.toJSON());
  });
  return app;
}
