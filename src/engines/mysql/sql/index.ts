/**
 * What meshgate knows about SQL text: lexing, the statement's verb, secrets to redact,
 * sqlcommenter tags (reading a traceparent, splicing meshgate's own comment), KILL, and
 * what a text does to session state (USE, profiling), the DEFINER of the objects a
 * statement creates and where each statement of a text starts, and the account statements
 * no client may run through meshgate.
 * The rest of the code imports from here only; the files behind it are one concept each.
 */
export { serverFlavor, statementVerb, statementVerbs, statementVerbsOfPrefix } from './classify.ts';
export type { ServerFlavor } from './classify.ts';
export { MAY_CARRY_SECRET, redactSecrets } from './redact.ts';
export { accountChange, accountChangeInBytes } from './accounts.ts';
export type { AccountChange } from './accounts.ts';
export { matchesInChunks } from './chunked.ts';
export { extractTraceparent, sqlcommenterComment } from './sqlcommenter.ts';
export { imitatesTag, spliceTag, tagComment } from './tag.ts';
export { sessionEffects } from './session-effects.ts';
export type { SessionEffects } from './session-effects.ts';
export { parseKillStatement, replaceKillId } from './kill.ts';
export type { KillStatement } from './kill.ts';
export { applyTextEdits, definerEdits, ROLE_DEFINER, statementPlan } from './definer.ts';
export type { DefinerOptions, StatementPlan, StatementStart, TextEdit } from './definer.ts';
export { spliceEdits } from './splice.ts';
export type { ByteEdit } from './splice.ts';
export { sanitizeSql } from './sanitize.ts';
export { TokenReader } from './tokens.ts';
export type { Token } from './tokens.ts';
