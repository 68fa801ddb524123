/**
 * Everything beneath a document, any collection at any depth, through meshgate against
 * Google's official emulator: the SDK's recursiveDelete() (a RunQuery whose selector has
 * allDescendants and no collection id, then BatchWrite deletes) and ListDocuments without a
 * collection id (sent with the SDK's own gapic client, `v1.FirestoreClient`, since the
 * Firestore class always names a collection). Each case checks what the client got, what
 * the emulator holds afterwards (read directly, as its owner) and the audit event.
 */
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import type { Firestore } from '@google-cloud/firestore';
import type { RpcEvent } from '../../../src/audit/types.ts';
import { meshgateClientSettings } from '../../../src/demo/firestore-sdk.ts';
import {
  encodeMessage,
  decodeMessage,
  FIRESTORE_SKIP,
  FS_METHOD,
  gaxGrpc,
  grpc,
  PERMISSION_DENIED,
  principal,
  rawFirestore,
  spiffe,
  startFirestoreFixture,
  waitForRpc,
  type FirestoreFixture,
  type GrpcFailure,
} from '../../helpers/firestore.ts';

// The gapic client is a lazy CommonJS getter, which ESM named imports cannot see.
const { v1 } = createRequire(import.meta.url)('@google-cloud/firestore') as typeof import('@google-cloud/firestore');

const RUN = randomBytes(3).toString('hex');
const PROJECT = `mg-it-subtree-${RUN}`;
/** The collection every document of this run lives in. */
const JOBS = `jobs-${RUN}`;

const WORKLOADS = {
  cleaner: spiffe('ns/ci/sa/cleaner'),
  partial: spiffe('ns/ci/sa/partial'),
  auditor: spiffe('ns/ci/sa/auditor'),
} as const;

/**
 * - cleaner: read and write everything beneath JOBS, at any depth;
 * - partial: the jobs and their steps, two levels only;
 * - auditor: read everything (`**`);
 * - DENY every caller anything in j3's vault, and everything of locked jobs.
 */
const POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: sub-allow }
spec:
  action: ALLOW
  rules:
    - id: cleaner
      from: [{ source: { principals: ["${principal('ns/ci/sa/cleaner')}"] } }]
      to: [{ firestore: { collections: ["${JOBS}/**"], operations: [read, write] } }]
    - id: partial
      from: [{ source: { principals: ["${principal('ns/ci/sa/partial')}"] } }]
      to: [{ firestore: { collections: ["${JOBS}/*", "${JOBS}/*/steps/*"], operations: [read, write] } }]
    - id: auditor
      from: [{ source: { principals: ["${principal('ns/ci/sa/auditor')}"] } }]
      to: [{ firestore: { collections: ["**"], operations: [read] } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: sub-deny }
spec:
  action: DENY
  rules:
    - id: vault
      to: [{ firestore: { collections: ["${JOBS}/j3/vault/**"] } }]
    - id: locked
      to: [{ firestore: { collections: ["${JOBS}/locked-*/**"] } }]
`;

const SEED: Record<string, Record<string, unknown>> = {
  [`${JOBS}/j1`]: { name: 'one' },
  [`${JOBS}/j1/steps/s1`]: { n: 1 },
  [`${JOBS}/j1/steps/s1/logs/l1`]: { line: 'a' },
  [`${JOBS}/j1/steps/s1/logs/l1/parts/p1`]: { part: 1 },
  [`${JOBS}/j1/notes/n1`]: { text: 'x' },
  [`${JOBS}/j2`]: { name: 'two' },
  [`${JOBS}/j2/steps/s1`]: { n: 1 },
  [`${JOBS}/j2/steps/s2`]: { n: 2 },
  [`${JOBS}/j3`]: { name: 'three' },
  [`${JOBS}/j3/steps/s1`]: { n: 1 },
  [`${JOBS}/j3/vault/v1`]: { secret: true },
  [`${JOBS}/j3/vault/v1/keys/k1`]: { key: 'k' },
  [`${JOBS}/locked-4`]: { name: 'four' },
  [`${JOBS}/locked-4/steps/s1`]: { n: 1 },
};
const J1_TREE = Object.keys(SEED).filter((p) => p.startsWith(`${JOBS}/j1`));

const DOCUMENTS_ROOT = `projects/${PROJECT}/databases/(default)/documents`;
const OK = 0;

function isDenied(what: string, rule: string | null): (error: GrpcFailure) => true {
  return (error) => {
    assert.equal(error.code, PERMISSION_DENIED, error.message);
    assert.match(error.message, /\[MG_POLICY_DENIED\]/);
    assert.ok(error.message.includes(what), `${error.message} should name ${what}`);
    if (rule !== null) assert.ok(error.message.includes(rule), `${error.message} should name rule ${rule}`);
    return true;
  };
}

const brief = (e: RpcEvent) => ({ decision: e.decision, rule: e.rule, paths: e.paths, status: e.status, operation: e.operation });

describe('Firestore subtrees through meshgate: recursiveDelete and ListDocuments without collection id (official emulator)', { skip: FIRESTORE_SKIP }, () => {
  let fx: FirestoreFixture;
  let cleaner: Firestore;
  let partial: Firestore;
  /** The SDK's gapic client through meshgate, per workload. */
  const gapic = new Map<string, InstanceType<typeof v1.FirestoreClient>>();

  before(async () => {
    fx = await startFirestoreFixture({ name: `fssub${RUN}`, project: PROJECT, workloads: WORKLOADS, policy: POLICY });
    cleaner = fx.client('cleaner');
    partial = fx.client('partial');
    for (const workload of Object.keys(WORKLOADS)) {
      const settings = meshgateClientSettings(gaxGrpc, { host: '127.0.0.1', port: fx.port }, fx.harness.ssl(workload));
      const client = new v1.FirestoreClient({ ...settings, servicePath: '127.0.0.1', projectId: PROJECT } as never);
      fx.onStop(() => client.close());
      gapic.set(workload, client);
    }
  });

  after(async () => {
    await fx?.stop();
  });

  beforeEach(async () => {
    await fx.reseed(SEED);
  });

  const exists = async (path: string) => (await fx.direct.doc(path).get()).exists;
  const surviving = async (paths: readonly string[]) => (await Promise.all(paths.map(async (p) => ((await exists(p)) ? p : null)))).filter((p) => p !== null);

  /** ListDocuments without collection id, with the SDK's gapic client through meshgate. */
  async function listEverything(workload: string, parent: string): Promise<string[]> {
    const [documents] = await gapic.get(workload)!.listDocuments({ parent: parent === '' ? DOCUMENTS_ROOT : `${DOCUMENTS_ROOT}/${parent}`, collectionId: '' }, { autoPaginate: false });
    return documents.map((d) => (d.name ?? '').slice(DOCUMENTS_ROOT.length + 1)).sort();
  }

  /** The same request straight to the emulator, as its owner: what a direct client sees. */
  async function listEverythingDirect(parent: string): Promise<string[]> {
    const raw = rawFirestore(`${fx.emulator.host}:${fx.emulator.port}`, grpc.credentials.createInsecure());
    try {
      const metadata = new grpc.Metadata();
      metadata.set('authorization', 'Bearer owner');
      const body = encodeMessage('ListDocumentsRequest', { parent: parent === '' ? DOCUMENTS_ROOT : `${DOCUMENTS_ROOT}/${parent}` });
      const answer = decodeMessage<{ documents?: { name: string }[] }>('ListDocumentsResponse', await raw.unary('ListDocuments', body, metadata));
      return (answer.documents ?? []).map((d) => d.name.slice(DOCUMENTS_ROOT.length + 1)).sort();
    } finally {
      raw.close();
    }
  }

  describe('recursiveDelete()', () => {
    test('of a document with nested subcollections, where policy allows its subtree: everything beneath and the document go', async () => {
      const mark = await fx.mark();
      await cleaner.recursiveDelete(cleaner.doc(`${JOBS}/j1`));
      assert.deepEqual(await surviving(J1_TREE), []);
      assert.deepEqual((await surviving(Object.keys(SEED))).length, Object.keys(SEED).length - J1_TREE.length, 'nothing outside j1 is touched');
      const [query] = await waitForRpc(fx, mark, 'RunQuery');
      assert.deepEqual(brief(query!), { decision: 'allow', rule: 'sub-allow/cleaner', paths: [`${JOBS}/j1/** (subtree)`], status: OK, operation: 'read' });
      assert.equal(query!.documents, J1_TREE.length - 1);
      assert.equal(query!.identity?.spiffeId, WORKLOADS.cleaner);
      const writes = (await fx.rpcSince(mark)).filter((e) => e.method === FS_METHOD('BatchWrite'));
      assert.ok(writes.length >= 1 && writes.every((e) => e.decision === 'allow' && e.status === OK && e.rule === 'sub-allow/cleaner'));
      assert.deepEqual(writes.flatMap((e) => e.paths).sort(), [...J1_TREE].sort());
    });

    test('where a DENY covers something beneath: refused, and no document beneath is deleted', async () => {
      const beneath = Object.keys(SEED).filter((p) => p.startsWith(`${JOBS}/j3/`));
      const mark = await fx.mark();
      await assert.rejects(cleaner.recursiveDelete(cleaner.doc(`${JOBS}/j3`)), (error: Error) => {
        // The SDK reports a failed listing as its own error, with meshgate's refusal inside.
        assert.match(error.stack ?? error.message, /\[MG_POLICY_DENIED\] read of subtree jobs-[0-9a-f]+\/j3\/\*\* denied: denied by rule sub-deny\/vault/);
        assert.match(error.stack ?? error.message, /no DENY rule that matches anything beneath it/);
        return true;
      });
      assert.deepEqual(await surviving(beneath), beneath, 'the query was refused before any document beneath was listed');
      const [query] = await waitForRpc(fx, mark, 'RunQuery');
      assert.deepEqual(brief(query!), { decision: 'deny', rule: 'sub-deny/vault', paths: [`${JOBS}/j3/** (subtree)`], status: PERMISSION_DENIED, operation: 'read' });
      assert.equal(query!.documents, 0);
      // After a failed listing the SDK still deletes the document it was given
      // (recursive-delete.js, onQueryEnd). That write is judged on its own: policy allows
      // cleaner to delete j3 itself, and Firestore never cascades, so only j3 goes.
      const writes = (await waitForRpc(fx, mark, 'BatchWrite')).map((e) => [e.decision, e.paths]);
      assert.deepEqual(writes, [['allow', [`${JOBS}/j3`]]]);
      assert.equal(await exists(`${JOBS}/j3`), false);
    });

    test('where a DENY covers the document and everything beneath: refused, nothing at all deleted', async () => {
      const tree = Object.keys(SEED).filter((p) => p.startsWith(`${JOBS}/locked-4`));
      const mark = await fx.mark();
      await assert.rejects(cleaner.recursiveDelete(cleaner.doc(`${JOBS}/locked-4`)), (error: Error) => {
        assert.match(error.stack ?? error.message, /denied by rule sub-deny\/locked/);
        return true;
      });
      assert.deepEqual(await surviving(tree), tree);
      assert.deepEqual(brief((await waitForRpc(fx, mark, 'RunQuery'))[0]!), { decision: 'deny', rule: 'sub-deny/locked', paths: [`${JOBS}/locked-4/** (subtree)`], status: PERMISSION_DENIED, operation: 'read' });
      assert.deepEqual((await waitForRpc(fx, mark, 'BatchWrite')).map((e) => [e.decision, e.rule, e.paths]), [['deny', 'sub-deny/locked', [`${JOBS}/locked-4`]]]);
    });

    test('where policy grants only some levels: refused, naming the pattern that would cover the subtree', async () => {
      const mark = await fx.mark();
      await assert.rejects(partial.recursiveDelete(partial.doc(`${JOBS}/j2`)), (error: Error) => {
        const text = error.stack ?? error.message;
        assert.match(text, /no ALLOW rule matches spiffe:\/\/[^ ]+\/ns\/ci\/sa\/partial for Firestore read on subtree beneath jobs-[0-9a-f]+\/j2/);
        assert.ok(text.includes(`such as "${JOBS}/j2/**" or "**"`), text);
        return true;
      });
      assert.deepEqual(await surviving([`${JOBS}/j2/steps/s1`, `${JOBS}/j2/steps/s2`]), [`${JOBS}/j2/steps/s1`, `${JOBS}/j2/steps/s2`]);
      assert.deepEqual(brief((await waitForRpc(fx, mark, 'RunQuery'))[0]!), { decision: 'deny', rule: null, paths: [`${JOBS}/j2/** (subtree)`], status: PERMISSION_DENIED, operation: 'read' });
    });

    test('of a subcollection: judged as the subtree of its parent document (the SDK narrows by name, meshgate does not read filters)', async () => {
      await cleaner.recursiveDelete(cleaner.collection(`${JOBS}/j1/steps`));
      assert.deepEqual(await surviving(J1_TREE), [`${JOBS}/j1`, `${JOBS}/j1/notes/n1`]);
      // A top-level collection's parent is the database root: only a grant of "**" covers it.
      const mark = await fx.mark();
      await assert.rejects(cleaner.recursiveDelete(cleaner.collection(JOBS)), (error: Error) => {
        assert.match(error.stack ?? error.message, /subtree beneath the database root/);
        return true;
      });
      assert.deepEqual(brief((await waitForRpc(fx, mark, 'RunQuery'))[0]!).paths, ['** (subtree)']);
      assert.equal(await exists(`${JOBS}/j2/steps/s1`), true);
    });
  });

  describe('ListDocuments without collection id', () => {
    test('allowed where policy covers the subtree: the same documents as a direct call', async () => {
      const mark = await fx.mark();
      const listed = await listEverything('cleaner', `${JOBS}/j2`);
      assert.deepEqual(listed, await listEverythingDirect(`${JOBS}/j2`));
      assert.deepEqual(listed, [`${JOBS}/j2/steps/s1`, `${JOBS}/j2/steps/s2`]);
      const [event] = await waitForRpc(fx, mark, 'ListDocuments');
      assert.deepEqual(brief(event!), { decision: 'allow', rule: 'sub-allow/cleaner', paths: [`${JOBS}/j2/** (subtree)`], status: OK, operation: 'read' });
      assert.equal(event!.documents, 2);
    });

    test('refused where a DENY covers something beneath, however deep', async () => {
      const mark = await fx.mark();
      await assert.rejects(listEverything('cleaner', `${JOBS}/j3`), isDenied(`subtree ${JOBS}/j3/**`, 'sub-deny/vault'));
      // The auditor may read everything, yet not the database root's subtree: the vault is in it.
      await assert.rejects(listEverything('auditor', ''), isDenied('subtree **', 'sub-deny/vault'));
      const events = (await waitForRpc(fx, mark, 'ListDocuments', 2)).map(brief);
      assert.deepEqual(events, [
        { decision: 'deny', rule: 'sub-deny/vault', paths: [`${JOBS}/j3/** (subtree)`], status: PERMISSION_DENIED, operation: 'read' },
        { decision: 'deny', rule: 'sub-deny/vault', paths: ['** (subtree)'], status: PERMISSION_DENIED, operation: 'read' },
      ]);
    });

    test('refused where policy grants fixed levels only; the SDK listing of one named collection still works', async () => {
      await assert.rejects(listEverything('partial', `${JOBS}/j2`), isDenied(`such as "${JOBS}/j2/**"`, null));
      const refs = await partial.collection(`${JOBS}/j2/steps`).listDocuments();
      assert.deepEqual(refs.map((r) => r.path).sort(), [`${JOBS}/j2/steps/s1`, `${JOBS}/j2/steps/s2`]);
      assert.deepEqual((await listEverything('auditor', `${JOBS}/j2`)), [`${JOBS}/j2/steps/s1`, `${JOBS}/j2/steps/s2`]);
    });
  });
});
