/**
 * The trimmed message types meshgate decodes must agree with Google's own: same field
 * numbers, same wire types, same repetition. Checked against the protos that ship with
 * @google-cloud/firestore, and by decoding messages the official types encoded.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import protobuf from 'protobufjs';
import { decodeRequest, TRIMMED_PROTO } from '../../../src/engines/firestore/codec/messages.ts';

const require = createRequire(import.meta.url);
const protosDir = join(dirname(require.resolve('@google-cloud/firestore/package.json')), 'build', 'protos');
const official = protobuf.Root.fromJSON(require(join(protosDir, 'v1.json')) as protobuf.INamespace);
const trimmed = protobuf.parse(TRIMMED_PROTO, { keepCase: true }).root;

function officialName(fullName: string): string {
  // Where Google nests a type differently from the trimmed file, name its real home.
  const rename: Record<string, string> = {
    'Target.DocumentsTarget': 'Target.DocumentsTarget',
    'Target.QueryTarget': 'Target.QueryTarget',
  };
  const local = fullName.replace(/^\.?meshgate\.firestore\.v1\./, '');
  if (local === 'Status') return 'google.rpc.Status';
  return `google.firestore.v1.${rename[local] ?? local}`;
}

function allTypes(ns: protobuf.NamespaceBase): protobuf.Type[] {
  const out: protobuf.Type[] = [];
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) out.push(nested);
    if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) out.push(...allTypes(nested as protobuf.NamespaceBase));
  }
  return out;
}

test('every trimmed field has Google’s number, type and repetition', () => {
  const types = allTypes(trimmed.lookup('meshgate.firestore.v1') as protobuf.Namespace);
  assert.ok(types.length > 30);
  for (const type of types) {
    const theirs = official.lookupType(officialName(type.fullName));
    for (const field of type.fieldsArray) {
      const match = theirs.fields[field.name] ?? theirs.fields[protobuf.util.camelCase(field.name)];
      assert.ok(match, `${type.fullName}.${field.name} exists in ${theirs.fullName}`);
      assert.equal(match.id, field.id, `${type.fullName}.${field.name} number`);
      assert.equal(match.repeated, field.repeated, `${type.fullName}.${field.name} repetition`);
      const kind = (f: protobuf.Field) => (f.resolve().resolvedType === null ? f.type : f.resolvedType instanceof protobuf.Enum ? 'enum' : 'message');
      assert.equal(kind(match), kind(field), `${type.fullName}.${field.name} type`);
      // A oneof here must be one there too: the strict check refuses two members at once.
      if (field.partOf !== null) assert.ok(match.partOf !== null && field.partOf.oneof.every((name) => match.partOf!.oneof.includes(name) || match.partOf!.oneof.includes(protobuf.util.camelCase(name))), `${type.fullName}.${field.partOf.name} is a oneof in ${theirs.fullName}`);
    }
  }
});

test('messages encoded with the official types decode to the same paths', () => {
  const Commit = official.lookupType('google.firestore.v1.CommitRequest');
  const bytes = Buffer.from(
    Commit.encode(
      Commit.fromObject({
        database: 'projects/p/databases/(default)',
        writes: [
          { update: { name: 'projects/p/databases/(default)/documents/orders/o1', fields: { qty: { integerValue: 3 } } }, updateMask: { fieldPaths: ['qty'] } },
          { delete: 'projects/p/databases/(default)/documents/orders/o2' },
          { transform: { document: 'projects/p/databases/(default)/documents/orders/o3', fieldTransforms: [{ fieldPath: 'n', increment: { integerValue: 1 } }] } },
        ],
        transaction: Buffer.from('tx'),
      }),
    ).finish(),
  );
  const decoded = decodeRequest('CommitRequest', bytes);
  assert.equal(decoded.database, 'projects/p/databases/(default)');
  assert.deepEqual(
    decoded.writes.map((w) => w.update?.name ?? (w.delete || w.transform?.document)),
    ['orders/o1', 'orders/o2', 'orders/o3'].map((p) => `projects/p/databases/(default)/documents/${p}`),
  );
  assert.equal(Buffer.from(decoded.transaction).toString(), 'tx');

  const Listen = official.lookupType('google.firestore.v1.ListenRequest');
  const listen = decodeRequest(
    'ListenRequest',
    Buffer.from(
      Listen.encode(
        Listen.fromObject({
          database: 'projects/p/databases/(default)',
          addTarget: { targetId: 7, query: { parent: 'projects/p/databases/(default)/documents', structuredQuery: { from: [{ collectionId: 'items', allDescendants: true }] } } },
        }),
      ).finish(),
    ),
  );
  assert.deepEqual(listen.add_target?.query?.structured_query?.from.map((f) => [f.collection_id, f.all_descendants]), [['items', true]]);
});
