/**
 * `meshgate analyze` as a user runs it (in-process), over a policy directory and a rotated
 * audit written by the real recorder, sink and seal: the report, --json, --min-denials, the
 * exit codes, and --suggest's patch, which `git apply` takes and which leaves a policy that
 * loads and grants what the audit showed was used, and no more.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runCli } from '../../../src/cli/main.ts';
import { loadPolicyDir, subjectFromPrincipal } from '../../../src/policy/index.ts';
import { captureIO } from '../../helpers/cli.ts';
import { tempDir } from '../audit/helpers.ts';
import { ANALYST, BILLING, CATALOG, CATALOG_POLICY, ORDERS, SHOP_POLICY, writePolicy, writeShopAudit } from './fixture.ts';

describe('meshgate analyze', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let files: string[];
  before(async () => {
    tmp = await tempDir();
    await writePolicy(join(tmp.dir, 'policy'));
    files = await writeShopAudit(join(tmp.dir, 'logs'));
  });
  after(() => tmp.cleanup());

  async function run(...argv: string[]) {
    const io = captureIO(tmp.dir);
    const code = await runCli(['analyze', ...argv], io);
    return { code, out: io.stdout, err: io.stderr, text: io.stdout.join('\n') };
  }

  it('reads every rotated file of the log, and names the window the findings hold for', async () => {
    assert.ok(files.length > 2, `the audit rotated (${files.join(', ')})`);
    const { code, text, err } = await run('--policy', 'policy', '--audit', 'logs');
    assert.equal(code, 0, err.join('\n'));
    assert.match(text, /^Audit window: \d{4}-\d\d-\d\dT[\d:.]+Z to \d{4}-\d\d-\d\dT[\d:.]+Z \(19 events\)$/m);
    assert.match(text, /Role grants: guessed from role names \(no --mariadb\)/);
    assert.match(text, /note: MariaDB was not asked/);
  });

  it('reports each kind of finding in its own table', async () => {
    const { text } = await run('--policy', 'policy', '--audit', join(tmp.dir, 'logs', 'audit.jsonl'));
    const section = (title: string) => text.slice(text.indexOf(title)).split('\n\n')[0]!;
    assert.match(section('Rules that decided nothing'), /shop\/legacy\s+ALLOW\s+policy\/shop\.yaml:33\s+principals: cluster\.local\/ns\/old\/sa\/batch/);
    assert.doesNotMatch(section('Rules that decided nothing'), /orders-rw|billing-rw|reports|no-ci|catalog-rw/);
    const writes = section('Identities in a writing role that never wrote');
    assert.match(writes, new RegExp(`${ORDERS.principal}\\s+shop/orders-rw\\s+shop_rw\\s+2\\s+3\\s+shop_ro\\s+SELECT×2 SHOW×1`));
    assert.doesNotMatch(writes, new RegExp(BILLING.principal), 'billing wrote');
    assert.doesNotMatch(writes, new RegExp(ANALYST.principal), 'shop_ro is no writing role');
    assert.match(section('Callers refused repeatedly'), /cluster\.local\/ns\/ci\/sa\/runner\s+6\s+\S+\s+\S+\s+shop-deny\/no-ci\s+denied by shop-deny\/no-ci/);
    assert.doesNotMatch(section('Callers refused repeatedly'), /clumsy/, 'two refusals are under the default of 5');
    assert.match(section('Firestore identities allowed to write that only read'), new RegExp(`${CATALOG.principal}\\s+catalog/catalog-rw\\s+read,write\\s+read×2`));
    assert.match(section('Firestore collection patterns no allowed call reached'), /catalog\/catalog-rw\s+products\/\*\/reviews\/\*/);
    assert.doesNotMatch(text, /Tables a role may touch/, 'tables need the grants from MariaDB');
  });

  it('--json gives the findings as one object; --min-denials lowers the bar', async () => {
    const { code, out } = await run('--policy', 'policy', '--audit', 'logs', '--json', '--min-denials', '2');
    assert.equal(code, 0);
    assert.equal(out.length, 1);
    const report = JSON.parse(out[0]!);
    assert.equal(report.window.events, 19);
    assert.equal(report.grantsSource, 'heuristic');
    assert.deepEqual(report.unusedRules.map((u: { rule: string }) => u.rule), ['shop/legacy']);
    assert.deepEqual(report.unusedWrites.map((w: { identity: string; readOnlyRole: string }) => [w.identity, w.readOnlyRole]), [[ORDERS.principal, 'shop_ro']]);
    assert.deepEqual(report.repeatedDenials.map((d: { identity: string; count: number }) => [d.identity, d.count]), [
      ['cluster.local/ns/ci/sa/runner', 6],
      ['cluster.local/ns/shop/sa/clumsy', 2],
    ]);
    assert.equal(report.patch, undefined, 'no patch without --suggest');
  });

  it('the same log named twice (a rotated file and the directory) is read once', async () => {
    const { out } = await run('--policy', 'policy', '--audit', join('logs', files[0]!), 'logs', '--json');
    assert.equal(JSON.parse(out[0]!).window.events, 19);
  });

  it('--suggest prints a patch that git applies, leaving a policy that loads and grants only what was used', async () => {
    const { code, out } = await run('--policy', 'policy', '--audit', 'logs', '--json', '--suggest');
    assert.equal(code, 0);
    const { patch } = JSON.parse(out[0]!) as { patch: string };
    assert.equal(await readFile(join(tmp.dir, 'policy', 'shop.yaml'), 'utf8'), SHOP_POLICY, 'nothing was applied');
    assert.match(patch, /^--- a\/policy\/catalog\.yaml\n\+\+\+ b\/policy\/catalog\.yaml\n/m);
    assert.match(patch, /^-            role: shop_rw\n\+            # meshgate analyze: nobody under shop\/orders-rw wrote .*\n\+            role: shop_ro$/m);
    assert.match(patch, /^\+    # - id: legacy$/m);
    assert.match(patch, /^-              - write$/m);

    const copy = join(tmp.dir, 'copy');
    await writePolicy(join(copy, 'policy'));
    await writeFile(join(copy, 'suggested.patch'), patch);
    const applied = spawnSync('git', ['apply', '--verbose', 'suggested.patch'], { cwd: copy, encoding: 'utf8' });
    assert.equal(applied.status, 0, applied.stderr);

    const patched = await loadPolicyDir(join(copy, 'policy'));
    assert.equal(patched.ruleCount, 5, 'legacy is commented out');
    const mysql = { engine: 'mysql' as const, database: 'shop' };
    assert.equal(patched.evaluate(subjectFromPrincipal(ORDERS.spiffeId), mysql).role, 'shop_ro');
    assert.equal(patched.evaluate(subjectFromPrincipal(BILLING.spiffeId), mysql).role, 'shop_rw', 'billing wrote: untouched');
    assert.equal(patched.evaluate(subjectFromPrincipal('spiffe://cluster.local/ns/old/sa/batch'), mysql).allow, false);
    const firestore = (operation: 'read' | 'write') => patched.evaluate(subjectFromPrincipal(CATALOG.spiffeId), { engine: 'firestore', database: '(default)', path: 'products/p1', pathKind: 'document', operation });
    assert.equal(firestore('read').allow, true);
    assert.equal(firestore('write').allow, false);
  });

  it('a patch at the end of a file without a final newline still applies', async () => {
    const dir = join(tmp.dir, 'no-newline');
    await writePolicy(join(dir, 'policy'));
    await writeFile(join(dir, 'policy', 'catalog.yaml'), CATALOG_POLICY.trimEnd());
    const io = captureIO(dir);
    assert.equal(await runCli(['analyze', '--policy', 'policy', '--audit', join(tmp.dir, 'logs'), '--json', '--suggest'], io), 0, io.stderr.join('\n'));
    const { patch } = JSON.parse(io.stdout[0]!) as { patch: string };
    assert.match(patch, /^-              - write\n\\ No newline at end of file$/m);
    await writeFile(join(dir, 'suggested.patch'), patch);
    const applied = spawnSync('git', ['apply', 'suggested.patch'], { cwd: dir, encoding: 'utf8' });
    assert.equal(applied.status, 0, applied.stderr);
    const patched = await readFile(join(dir, 'policy', 'catalog.yaml'), 'utf8');
    assert.match(patched, /operations:\n\s+# meshgate analyze: nobody under catalog\/catalog-rw wrote .*\n\s+- read\n?$/, 'the last item removed; the file now ends after `- read`');
    await loadPolicyDir(join(dir, 'policy'));
  });

  it('exit codes: 2 for usage, 1 for a policy or audit that does not load', async () => {
    assert.equal((await run('--audit', 'logs')).code, 2);
    assert.equal((await run('--policy', 'policy')).code, 2);
    assert.equal((await run('--policy', 'policy', '--audit', 'logs', '--min-denials', 'many')).code, 2);
    const missingLog = await run('--policy', 'policy', '--audit', 'nowhere');
    assert.equal(missingLog.code, 1);
    assert.match(missingLog.err.join('\n'), /MG_AUDIT_NOT_FOUND/);
    const badPolicy = await run('--policy', 'logs', '--audit', 'logs'); // a directory without a policy document
    assert.equal(badPolicy.code, 1);
    assert.match(badPolicy.err.join('\n'), /MG_POLICY_INVALID/);
  });
});
