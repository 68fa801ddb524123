/**
 * Audit anchors: the latest chain head of each audit log, kept in the state store, where
 * whoever edits the audit files cannot reach. A log cut short, rebuilt or replaced as a whole
 * no longer reaches or matches its anchor, even when every file in it is self-consistent.
 * Embedded (a file beside the leases) on one host; PostgreSQL when replicas share a store.
 */

export interface AuditAnchor {
  /** Which audit log: by default `<replica id>:<audit file path>` (config audit.anchorId). */
  readonly id: string;
  /** The log's identity, the hash of its first line. */
  readonly stream: string;
  /** Number of the file holding `seq`. */
  readonly file: number;
  readonly seq: number;
  /** Chain hash of line `seq`. */
  readonly head: string;
  /** ISO-8601, when meshgate anchored it. */
  readonly time: string;
  /** The signed checkpoint line for this head, when the log is signed. */
  readonly checkpoint: string | null;
  /** Epoch ms, set by the store. */
  readonly updatedAt: number;
}

export type AuditAnchorInput = Omit<AuditAnchor, 'updatedAt'>;

export interface AuditAnchorStore {
  /** Where it lives, for messages (never a password). */
  readonly location: string;
  getAnchor(id: string): Promise<AuditAnchor | null>;
  /** Sorted by id. */
  listAnchors(): Promise<AuditAnchor[]>;
  /**
   * Stores `anchor` when there is none for its id, or the stored one is of the same stream at
   * a seq no later than it. Another stream replaces it only with `supersede` (meshgate
   * started a new log on an emptied directory). Returns whether it was stored.
   */
  putAnchor(anchor: AuditAnchorInput, options?: { readonly supersede?: boolean }): Promise<boolean>;
  close(): Promise<void>;
}

/** The compare-and-set rule, shared so both stores decide alike. */
export function replaces(stored: AuditAnchorInput | null, next: AuditAnchorInput, supersede: boolean): boolean {
  if (stored === null) return true;
  if (stored.stream !== next.stream) return supersede;
  return stored.seq <= next.seq;
}
