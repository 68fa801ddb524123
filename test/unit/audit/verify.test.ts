import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { openJsonlAuditSink } from '../../../src/audit/jsonl-sink.ts';
import { verifyAuditFile } from '../../../src/audit/verify.ts';
import { GENESIS_HASH, sealLine } from '../../../src/audit/chain.ts';
import { linesBackward, linesForward } from '../../../src/audit/lines.ts';
import { statementEvent, tempDir } from './helpers.ts';

describe('verifyAuditFile', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let lines: string[];
  let n = 0;
  const write = async (content: string[] | string): Promise<string> => {
    const path = tmp.file(`case-${n++}.jsonl`);
    await writeFile(path, typeof content === 'string' ? content : content.map((l) => l + '\n').join(''));
    return path;
  };
  const parsed = (i: number) => JSON.parse(lines[i] ?? 'null') as Record<string, unknown>;

  before(async () => {
    tmp = await tempDir();
    const path = tmp.file('good.jsonl');
    const sink = await openJsonlAuditSink(path);
    for (let i = 1; i <= 10; i++) sink.record(statementEvent(i, { statement: `SELECT ${i} /* ünïcødé */` }));
    await sink.close();
    lines = (await readFile(path, 'utf8')).split('\n').slice(0, -1);
    assert.equal(lines.length, 10);
  });
  after(async () => {
    await tmp.cleanup();
  });

  const cases: Array<[string, () => string[] | string, number, RegExp]> = [
    ['an edited field', () => lines.map((l, i) => (i === 4 ? l.replace('SELECT 5', 'SELECT 6') : l)), 5, /line edited/],
    ['an edited hash', () => lines.map((l, i) => (i === 2 ? l.replace(/"hash":"[0-9a-f]/, '"hash":"x') : l)), 3, /hash/],
    ['a removed hash field', () => lines.map((l, i) => (i === 0 ? l.replace(/,"hash":"[0-9a-f]{64}"/, '') : l)), 1, /hash missing/],
    ['a deleted line', () => lines.filter((_, i) => i !== 4), 5, /seq 6 where 5 was expected/],
    ['a deleted first line', () => lines.slice(1), 1, /seq 2 where 1 was expected/],
    ['a duplicated line', () => [...lines.slice(0, 5), lines[2] ?? '', ...lines.slice(5)], 6, /seq 3 where 6 was expected/],
    ['two swapped lines', () => [...lines.slice(0, 3), lines[4] ?? '', lines[3] ?? '', ...lines.slice(5)], 4, /seq 5 where 4 was expected/],
    [
      'an inserted line forged with a valid hash',
      () => {
        const forged = sealLine(String(parsed(4)['hash']), JSON.stringify({ ...statementEvent(99), seq: 6, prev: parsed(4)['hash'] })).line.trimEnd();
        return [...lines.slice(0, 5), forged, ...lines.slice(5)];
      },
      7,
      /seq 6 where 7 was expected/,
    ],
    [
      'a replaced line forged with a valid hash',
      () => {
        const forged = sealLine(String(parsed(4)['hash']), JSON.stringify({ ...statementEvent(99), seq: 6, prev: parsed(4)['hash'] })).line.trimEnd();
        return lines.map((l, i) => (i === 5 ? forged : l));
      },
      7,
      /chain broken/,
    ],
    [
      'a line whose prev points elsewhere',
      () => {
        const forged = sealLine(GENESIS_HASH, JSON.stringify({ ...statementEvent(99), seq: 4, prev: GENESIS_HASH })).line.trimEnd();
        return lines.map((l, i) => (i === 3 ? forged : l));
      },
      4,
      /chain broken/,
    ],
    ['a restart that lost its place', () => [...lines, ...lines.slice(0, 2)], 11, /seq 1 where 11 was expected/],
    ['an empty line', () => [...lines.slice(0, 2), '', ...lines.slice(2)], 3, /empty line/],
    ['a line that is not JSON', () => [...lines.slice(0, 9), 'garbage'], 10, /not a JSON object/],
    ['a torn last line', () => lines.join('\n'), 10, /incomplete line/],
    ['a line with a trailing CR', () => lines.map((l, i) => (i === 7 ? l + '\r' : l)), 8, /hash is not the last field/],
  ];
  for (const [name, make, badLine, problem] of cases) {
    it(`detects ${name}`, async () => {
      const result = await verifyAuditFile(await write(make()));
      assert.equal(result.ok, false);
      assert.equal(result.firstBadLine, badLine);
      assert.equal(result.events, badLine - 1);
      assert.match(result.problem ?? '', problem);
    });
  }

  it('accepts the untouched file and an empty one', async () => {
    const good = await verifyAuditFile(await write(lines));
    assert.deepEqual(good, { ok: true, events: 10, firstBadLine: null, problem: null, lastHash: parsed(9)['hash'] });
    assert.deepEqual(await verifyAuditFile(await write('')), { ok: true, events: 0, firstBadLine: null, problem: null, lastHash: GENESIS_HASH });
  });

  it('streams files whose lines are larger than a read chunk', async () => {
    const path = tmp.file('large.jsonl');
    const sink = await openJsonlAuditSink(path);
    const big = 'é'.repeat(700_000); // 1.4 MB of two-byte characters: splits across chunks mid-character
    for (let i = 0; i < 3; i++) sink.record(statementEvent(i, { statement: big }));
    for (let i = 3; i < 2003; i++) sink.record(statementEvent(i));
    await sink.close();
    assert.deepEqual((await verifyAuditFile(path)).events, 2003);
  });
});

describe('line readers', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  before(async () => {
    tmp = await tempDir();
  });
  after(async () => {
    await tmp.cleanup();
  });

  const files = ['', '\n', 'a', 'a\n', 'a\nb', 'a\n\nb\n', '\n\n', 'abc\ndefgh\ni\n', 'x'.repeat(10) + '\n' + 'y'.repeat(7)];
  for (const [i, content] of files.entries()) {
    it(`reads ${JSON.stringify(content)} the same both ways, at every chunk size`, async () => {
      const path = tmp.file(`lines-${i}`);
      await writeFile(path, content);
      const forward = [];
      for await (const line of linesForward(path)) forward.push({ text: line.bytes.toString(), terminated: line.terminated });
      const segments = content.split('\n');
      const expected = segments.slice(0, -1).map((text) => ({ text, terminated: true }));
      const last = segments[segments.length - 1];
      if (last !== undefined && last !== '') expected.push({ text: last, terminated: false });
      assert.deepEqual(forward, expected);
      for (const chunk of [1, 2, 3, 5, 64 * 1024]) {
        const backward = [];
        for await (const line of linesBackward(path, chunk)) backward.push({ text: line.bytes.toString(), terminated: line.terminated });
        assert.deepEqual(backward.reverse(), expected, `chunk size ${chunk}`);
      }
    });
  }
});
