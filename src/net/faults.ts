/**
 * The fault queue: each entry applies to the next `count` messages on its pipe, in the
 * order entries were queued. The link's two directions and the event log consult it.
 */
import { assert } from '../lib/assert.ts';

export type Pipe = 'request' | 'response' | 'log';
export type FaultAction = 'drop' | 'delay' | 'duplicate';
/**
 * Which link messages a fault may hit: the transfer protocol's (EXECUTE, QUERY and their
 * answers), history sync's (repair and reconciliation), or any. Log faults hit any record.
 */
export type FaultTarget = 'any' | 'transfers' | 'sync';
/** What a link message is, for a fault's target. */
export type MessageKind = Exclude<FaultTarget, 'any'>;
export type Fault = { pipe: Pipe; action: FaultAction; count: number; delayMs: number; messages?: FaultTarget };
/** What happens to one message. */
export type Fate = { action: 'deliver' } | { action: 'drop' } | { action: 'delay'; delayMs: number } | { action: 'duplicate' };

export const MAX_QUEUED_FAULTS = 1000;

export class FaultQueue {
  private queue: Fault[] = [];

  add(fault: Fault): void {
    assert(fault.count >= 1, 'a fault applies to at least one message');
    assert(this.queue.length < MAX_QUEUED_FAULTS, 'fault queue is bounded');
    this.queue.push({ ...fault });
  }

  list(): Fault[] {
    return this.queue.map((f) => ({ ...f }));
  }

  clear(): void {
    this.queue = [];
  }

  get size(): number {
    return this.queue.length;
  }

  /** Decides the fate of the next message on `pipe`, consuming one use of the first fault that targets it. */
  next(pipe: Pipe, kind?: MessageKind): Fate {
    const i = this.queue.findIndex((f) => f.pipe === pipe && (f.messages === undefined || f.messages === 'any' || f.messages === kind));
    if (i < 0) return { action: 'deliver' };
    const fault = this.queue[i]!;
    fault.count -= 1;
    if (fault.count === 0) this.queue.splice(i, 1);
    if (fault.action === 'delay') return { action: 'delay', delayMs: fault.delayMs };
    return { action: fault.action };
  }
}
