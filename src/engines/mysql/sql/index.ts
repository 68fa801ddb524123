/**
 * What meshgate knows about SQL text: lexing, the statement's verb, secrets to redact,
 * sqlcommenter tags (reading a traceparent, splicing meshgate's own comment), KILL, and
 * what a text does to session state (USE, profiling), and the DEFINER of the objects a
 * statement creates.
 * The rest of the code imports from here only; the files behind it are one concept each.
 */
export { serverFlavor, statementVerb } from './classify.ts';
export type { ServerFlavor } from './classify.ts';
export { redactSecrets } from './redact.ts';
export { extractTraceparent, sqlcommenterComment } from './sqlcommenter.ts';
export { imitatesTag, spliceTag } from './tag.ts';
export { sessionEffects } from './session-effects.ts';
export type { SessionEffects } from './session-effects.ts';
export { parseKillStatement, replaceKillId } from './kill.ts';
export type { KillStatement } from './kill.ts';
export { applyTextEdits, definerEdits, ROLE_DEFINER } from './definer.ts';
export type { DefinerOptions, TextEdit } from './definer.ts';
export { spliceEdits } from './splice.ts';
export type { ByteEdit } from './splice.ts';
