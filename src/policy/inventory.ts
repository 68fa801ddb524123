/**
 * What a policy grants, rule by rule, as written: for tools that reason about the policy
 * rather than evaluate it (`meshgate analyze` compares it with the audit and proposes edits
 * to the files, so each rule keeps the file and lines it came from).
 */
import { FIRESTORE_DEFAULT_DATABASE } from './schema.ts';
import { ruleIdOf } from './match.ts';
import { parsePolicySource, type PolicySourceText } from './parse.ts';

export interface InventoryMariadbTarget {
  /** Null: the target names no databases (any). */
  readonly databases: readonly string[] | null;
  readonly role: string | null;
  /** Line of `role:` in the file, for edits. */
  readonly roleLine: number | null;
}

export interface InventoryFirestoreTarget {
  readonly databases: readonly string[];
  readonly collections: readonly string[];
  /** Null: omitted (DENY only: every operation). */
  readonly operations: readonly string[] | null;
  /** Line where the `operations` list starts (its `[` or its first `-`). */
  readonly operationsLine: number | null;
}

export interface InventoryRule {
  /** `<policy name>/<rule id or index>`, as decisions and audit events name it. */
  readonly id: string;
  /** The document's action (ALLOW, DENY, AUDIT) as written. */
  readonly action: string;
  /**
   * A dry run (`action: AUDIT` on the rule or its document): matched and recorded in the
   * audit (`dryRun.rule`), never enforced, so it grants and refuses nothing.
   */
  readonly dryRun: boolean;
  readonly file: string;
  readonly docIndex: number;
  /** Line of the rule's list item, and of its document's `rules:` list. */
  readonly line: number | null;
  /** How many rules its document holds: removing the only one would leave an invalid document. */
  readonly siblings: number;
  /** The principals/namespaces its `from` names, for people ('any caller' when omitted). */
  readonly from: string;
  readonly mariadb: readonly InventoryMariadbTarget[];
  readonly firestore: readonly InventoryFirestoreTarget[];
}

/**
 * Every rule of already-validated sources (loadPolicyDocuments has accepted them), in load
 * order. Documents that do not validate are left out, not reported: load first.
 */
export function policyInventory(sources: readonly PolicySourceText[]): InventoryRule[] {
  const rules: InventoryRule[] = [];
  for (const source of sources) {
    for (const { doc, docIndex, lineOf } of parsePolicySource(source).documents) {
      doc.spec.rules.forEach((rule, index) => {
        const at = ['spec', 'rules', index];
        const mariadb: InventoryMariadbTarget[] = [];
        const firestore: InventoryFirestoreTarget[] = [];
        rule.to?.forEach((target, t) => {
          if (target.mariadb !== undefined) {
            const role = target.mariadb.role ?? null;
            mariadb.push({ databases: target.mariadb.databases ?? null, role, roleLine: role === null ? null : lineOf([...at, 'to', t, 'mariadb', 'role']) });
          }
          if (target.firestore !== undefined) {
            const operations = target.firestore.operations ?? null;
            firestore.push({
              databases: target.firestore.databases ?? [FIRESTORE_DEFAULT_DATABASE],
              collections: target.firestore.collections,
              operations,
              operationsLine: operations === null ? null : lineOf([...at, 'to', t, 'firestore', 'operations']),
            });
          }
        });
        rules.push({
          id: ruleIdOf(doc.metadata.name, rule, index),
          action: doc.spec.action,
          dryRun: doc.spec.action === 'AUDIT' || rule.action === 'AUDIT',
          file: source.name,
          docIndex,
          line: lineOf(at),
          siblings: doc.spec.rules.length,
          from: describeFrom(rule.from),
          mariadb,
          firestore,
        });
      });
    }
  }
  return rules;
}

function describeFrom(from: readonly { readonly source: Readonly<Record<string, unknown>> }[] | undefined): string {
  if (from === undefined) return 'any caller';
  return from
    .map(({ source }) =>
      Object.entries(source)
        .filter(([, value]) => Array.isArray(value))
        .map(([key, value]) => `${key}: ${(value as unknown[]).join(', ')}`)
        .join('; '),
    )
    .filter((text) => text !== '')
    .join(' | ');
}
