import type { AuditEvent, AuditSink } from '../../src/audit/types.ts';

/** An audit sink that keeps events in memory, for tests that run the recorder without a file. */
export function memoryAuditSink<E extends AuditEvent = AuditEvent>(events: E[] = []): AuditSink & { readonly events: E[]; backlogged: boolean } {
  const drains: (() => void)[] = [];
  let backlogged = false;
  return {
    events,
    record: (event) => void events.push(event as E),
    get backlogged() {
      return backlogged;
    },
    set backlogged(value: boolean) {
      backlogged = value;
      if (!value) for (const listener of drains.splice(0)) listener();
    },
    onDrain: (listener) => (backlogged ? drains.push(listener) : queueMicrotask(listener)),
    flush: async () => {},
    close: async () => {},
  };
}
