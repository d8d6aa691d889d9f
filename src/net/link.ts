/**
 * The link: asynchronous request/response between channel and core over an unreliable
 * network. Every message is delivered later, through the clock, never inside the call.
 */
import type { Clock } from '../lib/clock.ts';
import type { FaultQueue, Pipe } from './faults.ts';
import { messageKind, type LinkRequest, type LinkResponse } from './messages.ts';

export interface Link {
  /** Channel side: send a request toward the core. */
  request(message: LinkRequest): void;
  /** Channel side: where answers arrive (null: the channel is down, answers are lost). */
  onResponse(handler: ((message: LinkResponse) => void) | null): void;
  /** Core side: send an answer toward the channel. */
  respond(message: LinkResponse): void;
  /** Core side: where requests arrive (null: the core is down, requests are lost). */
  onRequest(handler: ((message: LinkRequest) => void) | null): void;
}

/** Which way a link message travels. */
export type LinkPipe = Extract<Pipe, 'request' | 'response'>;

/**
 * The network beyond the fault queue: decides, per message, after how long each copy
 * arrives. No copy is a drop, two are a duplicate, unequal delays reorder. The simulator
 * plugs its seeded scheduler in here (it may also crash the sending side from here, right
 * after the commit that preceded the send); production has none.
 */
export interface NetworkPolicy {
  deliveries(pipe: LinkPipe, message: LinkRequest | LinkResponse): readonly number[];
  /** Called once the copies are on their way (the simulator may crash the sender here). */
  afterSend?(pipe: LinkPipe, message: LinkRequest | LinkResponse): void;
}

/** What became of one message at the fault queue (the network beyond it may still lose it). */
export type LinkFate = 'delivered' | 'dropped' | 'delayed' | 'duplicated';

export type LinkOptions = {
  clock: Clock;
  faults: FaultQueue;
  latencyMs?: number;
  network?: NetworkPolicy;
  /** Every message with its fate: the metrics' link counts. */
  onCarried?: (pipe: LinkPipe, type: string, fate: LinkFate) => void;
};

const FATES = { deliver: 'delivered', drop: 'dropped', delay: 'delayed', duplicate: 'duplicated' } as const;

/** Carries one message through the fault queue and the network policy, then hands each copy to `deliver` later, on the clock. */
export type Carrier = <M extends LinkRequest | LinkResponse>(pipe: LinkPipe, message: M, deliver: (m: M) => void) => void;

/**
 * The faults and the network of a link, apart from where its messages go: the in-process link
 * below, and the channel's end of the link over NATS (src/net/nats-link.ts), use the same one.
 */
export function createCarrier({ clock, faults, latencyMs = 0, network, onCarried }: LinkOptions): Carrier {
  return function carry<M extends LinkRequest | LinkResponse>(pipe: LinkPipe, message: M, deliver: (m: M) => void): void {
    const fate = faults.next(pipe, messageKind(message));
    onCarried?.(pipe, message.type, FATES[fate.action]);
    // Messages are cloned as a network would: the receiver never shares the sender's object.
    const wire = () => structuredClone(message);
    switch (fate.action) {
      case 'drop':
        return;
      case 'deliver':
        if (network === undefined) {
          clock.setTimeout(() => deliver(wire()), latencyMs);
          return;
        }
        for (const delayMs of network.deliveries(pipe, message)) {
          const copy = wire();
          clock.setTimeout(() => deliver(copy), latencyMs + delayMs);
        }
        network.afterSend?.(pipe, message);
        return;
      case 'delay':
        clock.setTimeout(() => deliver(wire()), latencyMs + fate.delayMs);
        return;
      case 'duplicate':
        clock.setTimeout(() => deliver(wire()), latencyMs);
        clock.setTimeout(() => deliver(wire()), latencyMs);
        return;
    }
  };
}

export function createLink(options: LinkOptions): Link {
  let toCore: ((m: LinkRequest) => void) | null = null;
  let toChannel: ((m: LinkResponse) => void) | null = null;
  const carry = createCarrier(options);

  return {
    request: (m) => carry('request', m, (w) => toCore?.(w)),
    respond: (m) => carry('response', m, (w) => toChannel?.(w)),
    onResponse: (h) => {
      toChannel = h;
    },
    onRequest: (h) => {
      toCore = h;
    },
  };
}
