/**
 * A log line for every client meshgate turns away and every call its upstream fails, beside
 * the audit event: operators read the server log first. The fields say who and what —
 * code, peer, identity when known, the rule — and never carry a token, password or
 * statement (meshgate's error messages hold none).
 */
import type { MeshgateError } from '../errors/index.ts';
import type { Identity } from '../identity/index.ts';
import type { Logger } from '../log.ts';

export interface RefusalFacts {
  readonly engine: 'mysql' | 'firestore';
  readonly sessionId: string;
  readonly peer: { readonly address: string; readonly port: number };
  readonly identity: Identity | null;
  readonly rule?: string | null;
  /** The gRPC method, for Firestore. */
  readonly method?: string;
}

const WHAT = { mysql: 'MySQL login', firestore: 'Firestore call' } as const;

export function logRefusal(log: Logger, error: MeshgateError, facts: RefusalFacts): void {
  // The audit sink says once when an outage begins and once when it ends; a line per
  // refused operation would flood the log exactly when the disk is full.
  if (error.code === 'MG_AUDIT_UNAVAILABLE') return;
  // Unavailable, config and internal errors are meshgate's or its upstream's, not the caller's.
  const ours = error.kind === 'unavailable' || error.kind === 'config' || error.kind === 'internal';
  log.warn(ours ? `a ${WHAT[facts.engine]} failed: [${error.code}] ${error.message}` : `refused a ${WHAT[facts.engine]}: [${error.code}] ${error.message}`, {
    code: error.code,
    engine: facts.engine,
    sessionId: facts.sessionId,
    peer: `${facts.peer.address}:${facts.peer.port}`,
    identity: facts.identity?.spiffeId ?? null,
    ...(facts.rule === undefined || facts.rule === null ? {} : { rule: facts.rule }),
    ...(facts.method === undefined ? {} : { method: facts.method }),
  });
}
