/**
 * /machines/*: the XState definitions as data. Each is served as the config it was created
 * from (states, transitions, guards, actions and delays by name), which the Stately editor
 * imports when wrapped in `createMachine(...)`; `?format=code` answers exactly that text.
 */
import { Hono } from 'hono';
import type { AnyStateMachine } from 'xstate';
import { coreBankingMachine } from '../../machines/core-banking.ts';
import { transferMachine } from '../../machines/transfer.ts';
import { badRequest, notFound } from '../problem.ts';

export const MACHINES = { transfer: transferMachine, coreBanking: coreBankingMachine } as const satisfies Record<string, AnyStateMachine>;
export type MachineName = keyof typeof MACHINES;

/** A machine's config as plain JSON: functions (the context factory) drop out, names stay. */
export function machineConfigJson(machine: AnyStateMachine): Record<string, unknown> {
  return JSON.parse(JSON.stringify(machine.config)) as Record<string, unknown>;
}

/** The config as code the Stately editor's "Import from code" accepts. */
export function machineConfigCode(machine: AnyStateMachine): string {
  return `createMachine(${JSON.stringify(machineConfigJson(machine), null, 2)});\n`;
}

export function machineByName(name: string): AnyStateMachine | undefined {
  return Object.hasOwn(MACHINES, name) ? MACHINES[name as MachineName] : undefined;
}

export function machineRoutes() {
  const app = new Hono();
  app.get('/', (c) =>
    c.json(
      Object.entries(MACHINES).map(([name, machine]) => ({
        name,
        states: Object.keys(machine.config.states ?? {}),
        url: `/machines/${name}`,
      })),
    ),
  );
  app.get('/:name', (c) => {
    const name = c.req.param('name');
    const machine = machineByName(name);
    if (machine === undefined) throw notFound(`no machine named ${name}`);
    const format = c.req.query('format') ?? 'json';
    if (format === 'code') return c.text(machineConfigCode(machine), 200, { 'Content-Type': 'text/typescript; charset=utf-8' });
    if (format !== 'json') throw badRequest('format: json or code');
    return c.json(machineConfigJson(machine));
  });
  return app;
}
