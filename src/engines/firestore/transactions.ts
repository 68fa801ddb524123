/**
 * Read-only transactions stay read-only: the ids of transactions a caller began read-only,
 * so that a Commit carrying writes in one is refused by meshgate, whatever the upstream
 * would do. Bounded: entries expire after Firestore's own transaction lifetime.
 */
const TRANSACTION_LIFETIME_MS = 270_000;
const MAX_ENTRIES = 100_000;

export class ReadOnlyTransactions {
  private readonly entries = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  markReadOnly(principal: string, transaction: string): void {
    if (this.entries.size >= MAX_ENTRIES) this.sweep();
    if (this.entries.size >= MAX_ENTRIES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(`${principal}\0${transaction}`, this.now() + TRANSACTION_LIFETIME_MS);
  }

  isReadOnly(principal: string, transaction: string): boolean {
    const key = `${principal}\0${transaction}`;
    const expires = this.entries.get(key);
    if (expires === undefined) return false;
    if (expires < this.now()) {
      this.entries.delete(key);
      return false;
    }
    return true;
  }

  private sweep(): void {
    const now = this.now();
    for (const [key, expires] of this.entries) if (expires < now) this.entries.delete(key);
  }
}
