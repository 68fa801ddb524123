/**
 * What every audit anchor store must do, embedded or PostgreSQL: keep the latest chain head
 * of each audit log, never let it move backwards or to another log's stream unless the writer
 * says it starts a new one on purpose.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { AuditAnchor, AuditAnchorStore } from '../../src/store/anchors.ts';

export interface AnchorFixture {
  open(options?: { readonly now?: () => number }): Promise<AuditAnchorStore>;
}

const hex = (c: string) => c.repeat(64);

export function anchor(overrides: Partial<AuditAnchor> = {}): Omit<AuditAnchor, 'updatedAt'> {
  return { id: 'replica-a:/var/log/meshgate/audit.jsonl', stream: hex('a'), file: 1, seq: 100, head: hex('b'), time: '2025-01-01T00:00:00.000Z', checkpoint: null, ...overrides };
}

export function describeAnchorContract(name: string, fresh: () => Promise<AnchorFixture>, options: { skip?: string | false } = {}): void {
  describe(`${name} audit anchor store`, { skip: options.skip ?? false }, () => {
    const opened: AuditAnchorStore[] = [];
    const open = async (fixture: AnchorFixture, now?: () => number) => {
      const store = await fixture.open(now === undefined ? {} : { now });
      opened.push(store);
      return store;
    };
    afterEach(async () => {
      await Promise.all(opened.splice(0).map((store) => store.close()));
    });

    test('keeps the latest head of each log, with the time it was stored', async () => {
      const fixture = await fresh();
      const store = await open(fixture, () => 1_700_000_000_123);
      assert.equal(await store.getAnchor(anchor().id), null);
      assert.equal(await store.putAnchor(anchor()), true);
      assert.equal(await store.putAnchor(anchor({ id: 'replica-b:audit.jsonl', seq: 7, checkpoint: '{"n":1}' })), true);
      assert.deepEqual(await store.getAnchor(anchor().id), { ...anchor(), updatedAt: 1_700_000_000_123 });
      // Another handle on the same place sees it: the anchor outlives the process.
      const again = await open(fixture);
      assert.deepEqual((await again.listAnchors()).map((a) => [a.id, a.seq, a.checkpoint]), [
        ['replica-a:/var/log/meshgate/audit.jsonl', 100, null],
        ['replica-b:audit.jsonl', 7, '{"n":1}'],
      ]);
    });

    test('moves forward only, within one stream', async () => {
      const store = await open(await fresh());
      assert.equal(await store.putAnchor(anchor({ seq: 100 })), true);
      assert.equal(await store.putAnchor(anchor({ seq: 99, head: hex('c') })), false);
      assert.equal(await store.putAnchor(anchor({ seq: 150, file: 2, head: hex('d') })), true);
      assert.equal(await store.putAnchor(anchor({ seq: 150, file: 2, head: hex('d'), time: '2025-01-01T00:01:00.000Z' })), true, 'the same head again (a shutdown checkpoint)');
      assert.equal(await store.putAnchor(anchor({ stream: hex('e'), seq: 500 })), false, 'another stream does not replace it');
      assert.equal((await store.getAnchor(anchor().id))?.head, hex('d'));
      assert.equal(await store.putAnchor(anchor({ stream: hex('e'), seq: 3 }), { supersede: true }), true);
      assert.deepEqual([(await store.getAnchor(anchor().id))?.stream, (await store.getAnchor(anchor().id))?.seq], [hex('e'), 3]);
    });

    test('racing writers of one log end on the highest head', async () => {
      const fixture = await fresh();
      const stores = await Promise.all([open(fixture), open(fixture), open(fixture)]);
      const puts = [];
      for (let seq = 1; seq <= 30; seq++) puts.push(stores[seq % 3]!.putAnchor(anchor({ seq, head: seq.toString(16).padStart(64, '0') })));
      await Promise.all(puts);
      assert.equal((await stores[0]!.getAnchor(anchor().id))?.seq, 30);
    });
  });
}
