/**
 * Whether an account statement found in a literal has the shape of one (sql/accounts.ts):
 * prose says "grant" and "drop user" too.
 */
import type { Token, TokenReader } from './tokens.ts';

/**
 * Whether an account statement has the shape of one: GRANT … TO, REVOKE … FROM, SET PASSWORD
 * = | FOR, SET DEFAULT ROLE / SET SESSION AUTHORIZATION <name>, and CREATE/ALTER/DROP/RENAME
 * USER|ROLE [IF [NOT] EXISTS] <name> followed by the end, '@', ',', '(' or a user
 * specification's keyword. Only literals need it: in prose "then grant them access" or "create user
 * accounts for …" must pass. Prose shaped exactly like a statement ("grant admin to bob")
 * is refused.
 */
export class ShapeCheck {
  shaped: string | null = null;
  private candidate: string | null = null;
  private awaiting: 'TO' | 'FROM' | 'name' | 'after-name' | null = null;

  start(statement: string, r: TokenReader): void {
    if (this.shaped !== null) return;
    const next = r.peek();
    switch (statement) {
      case 'GRANT':
      case 'REVOKE':
        if (this.awaiting === null) this.await(statement, statement === 'GRANT' ? 'TO' : 'FROM');
        return;
      case 'SET PASSWORD':
        if (r.isPunct(next, '=') || r.isPunct(next, ':') || r.isWord(next, 'FOR')) this.shaped = statement;
        return;
      case 'SET DEFAULT ROLE':
      case 'SET SESSION AUTHORIZATION':
        if (isName(next)) this.shaped = statement;
        return;
      case 'BINLOG':
        this.shaped = statement;
        return;
      default:
        if (this.awaiting === null) this.await(statement, 'name');
    }
  }

  /** The next token (null word when it is none, null token at the end of the text). */
  feed(r: TokenReader, t: Token | null, word: string | null): void {
    if (this.awaiting === null || this.shaped !== null) return;
    const end = t === null || t.kind === 'end' || r.isPunct(t, ';');
    if (this.awaiting === 'TO' || this.awaiting === 'FROM') {
      if (word === this.awaiting) this.shaped = this.candidate;
      else if (end) this.awaiting = null;
    } else if (this.awaiting === 'name') {
      if (word === 'IF' || word === 'NOT' || word === 'EXISTS') return;
      this.awaiting = isName(t) ? 'after-name' : null;
    } else {
      // '(' after CURRENT_USER.
      if (end || r.isPunct(t, '@') || r.isPunct(t, ',') || r.isPunct(t, '(') || (word !== null && AFTER_NAME.has(word))) this.shaped = this.candidate;
      this.awaiting = null;
    }
  }

  private await(statement: string, what: NonNullable<ShapeCheck['awaiting']>): void {
    this.candidate = statement;
    this.awaiting = what;
  }
}

/** What may follow an account's name in CREATE/ALTER/DROP/RENAME USER and CREATE/DROP ROLE. */
const AFTER_NAME = new Set(['IDENTIFIED', 'TO', 'REQUIRE', 'WITH', 'ACCOUNT', 'PASSWORD', 'DEFAULT', 'RESOURCE']);

function isName(t: Token | null): boolean {
  return t !== null && (t.kind === 'word' || t.kind === 'quoted' || t.kind === 'string');
}

