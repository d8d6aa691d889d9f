/**
 * The transfer machine's delayed events by the names the journal and the charts both use:
 * XState calls them `xstate.after.<delay>.<state>`, a reader calls them by what they mean.
 * Plain data, so the pages can import it without XState.
 */
export const DELAY_EVENT_NAMES: Readonly<Record<string, string>> = {
  untilResponseDeadline: 'RESPONSE_TIMEOUT',
  untilNextQuery: 'QUERY_DUE',
  untilQueryDeadline: 'QUERY_TIMEOUT',
};
