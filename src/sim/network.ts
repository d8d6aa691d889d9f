/**
 * The simulated network between channel and core: per message, the seeded stream picks
 * drop, duplicate, short or late delay, or plain latency (unequal latencies reorder); while
 * the link is cut everything is lost. It may also crash a sender right around a send.
 */
import type { LinkPipe, NetworkPolicy } from '../net/link.ts';
import type { LinkRequest, LinkResponse } from '../net/messages.ts';
import type { Side } from '../bank.ts';
import { BOUNDS, SIM_SETTINGS, type FaultProfile } from './profile.ts';
import type { Prng } from './prng.ts';

/** Thrown from inside the bank's code to stop one side where it stands, as a process crash would. */
export class SimulatedCrash extends Error {
  override name = 'SimulatedCrash';
  constructor(readonly side: Side, readonly where: string) {
    super(`simulated crash of the ${side}: ${where}`);
  }
}

type Message = LinkRequest | LinkResponse;

function describe(m: Message): string {
  switch (m.type) {
    case 'execute':
      return `execute ${m.request.requestId}`;
    case 'query':
      return `query ${m.requestId}`;
    case 'execute-answer':
      return `execute-answer ${m.requestId} ${m.decision.kind === 'executed' ? 'executed' : `rejected:${m.decision.reason}`}`;
    case 'query-answer':
      return `query-answer ${m.requestId} ${m.answer.kind === 'rejected' ? `rejected:${m.answer.reason}` : m.answer.kind}`;
    default:
      return m.type;
  }
}

/** Only the messages that follow a commit of a decision or a transition carry a crash. */
function followsCommit(m: Message): boolean {
  return m.type === 'execute' || m.type === 'query' || m.type === 'execute-answer' || m.type === 'query-answer';
}

export class SimNetwork implements NetworkPolicy {
  /** Once faults stop, every message arrives once, after plain latency, and no commit is followed by a crash. */
  calm = false;
  cut = false;
  private crashAfterSend: SimulatedCrash | null = null;

  constructor(
    private readonly prng: Prng,
    private readonly faults: FaultProfile,
    private readonly trace: (line: string) => void,
  ) {}

  private latency(): number {
    return this.prng.int(1, BOUNDS.maxLatencyMs);
  }

  /**
   * After each commit of a side (the bank's onCommitted), before the batch's effects leave: a
   * crash here loses every answer, send and wake-up the batch queued, while its writes stay.
   */
  afterCommit(side: 'channel' | 'core'): void {
    if (this.calm || !this.prng.chance(this.faults.batchCrashP)) return;
    this.trace(`${side} crashes after a commit, before its effects leave`);
    throw new SimulatedCrash(side, 'after a commit, before its effects');
  }

  deliveries(pipe: LinkPipe, message: Message): readonly number[] {
    const what = `${pipe} ${describe(message)}`;
    if (this.calm) return [this.latency()];
    const f = this.faults;
    if (followsCommit(message) && this.prng.chance(f.commitCrashP)) {
      const side = pipe === 'request' ? 'channel' : 'core';
      const crash = new SimulatedCrash(side, `after the commit before ${what}`);
      if (this.prng.chance(0.5)) {
        this.trace(`net ${what}: lost, the ${side} crashes before sending`);
        throw crash;
      }
      this.crashAfterSend = crash;
    }
    if (this.cut) return this.log(what, 'dropped (link cut)', []);
    if (this.prng.chance(f.dropP)) return this.log(what, 'dropped', []);
    if (this.prng.chance(f.duplicateP)) {
      const copies = [this.latency(), this.prng.int(1, BOUNDS.maxShortDelayMs)];
      return this.log(what, `duplicated +${copies[0]}ms +${copies[1]}ms`, copies);
    }
    if (this.prng.chance(f.lateDelayP)) {
      const d = this.prng.int(SIM_SETTINGS.responseTimeoutMs!, BOUNDS.maxLateDelayMs);
      return this.log(what, `late +${d}ms`, [d]);
    }
    if (this.prng.chance(f.shortDelayP)) {
      const d = this.prng.int(1, BOUNDS.maxShortDelayMs);
      return this.log(what, `delayed +${d}ms`, [d]);
    }
    return this.log(what, '', [this.latency()]);
  }

  afterSend(): void {
    const crash = this.crashAfterSend;
    if (crash === null) return;
    this.crashAfterSend = null;
    this.trace(`net the ${crash.side} crashes right after sending`);
    throw crash;
  }

  private log(what: string, fate: string, delays: number[]): number[] {
    this.trace(`net ${what}${fate === '' ? ` +${delays[0]}ms` : `: ${fate}`}`);
    return delays;
  }
}
