/**
 * Assertions for what must be true: a failed one is a bug in scrollbank, never a user error.
 */
export class InvariantError extends Error {
  override name = 'InvariantError';
}

export function assert(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantError(message);
}
