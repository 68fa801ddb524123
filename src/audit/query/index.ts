/**
 * Reading the audit back: `meshgate audit query` filters events from an event source (the
 * JSONL log today) and prints them, or groups statements and Firestore calls by fingerprint.
 */
export { digestEvents, MAX_DIGESTS, type DigestRow } from './digest.ts';
export { digestKeyOf, pathPattern, splitRecordedPath, type DigestKey } from './digest-key.ts';
export { compileFilter, compileGlob, DECISIONS, ENGINES, OUTCOMES, type EventFilter, type QueryFilterInput, type TimeWindow } from './filter.ts';
export { MAX_FINGERPRINT_CHARS, sqlFingerprint } from './fingerprint.ts';
export { openJsonlEventSource } from './jsonl-source.ts';
export { QuantileSketch } from './sketch.ts';
export { queryEvents, type AuditEventSource, type SourcedEvent } from './source.ts';
export { DIGEST_COLUMNS, digestCells, EVENT_COLUMNS, eventCells, TableWriter, type Column } from './table.ts';
export { parseTimeBound } from './time.ts';

