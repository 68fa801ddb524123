/**
 * The direction of imports between folders (DESIGN "Layout"): lower folders never reach back
 * up into an engine, and a folder with an index.ts is entered through it. Reads every import,
 * `export … from`, `import()` and `require()` in src/ with TypeScript's own pre-parser.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import ts from 'typescript';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(join(ROOT, dir), { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...sourceFiles(path));
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out.sort();
}

/** Each file of src/ with the project files it imports, as paths relative to the checkout. */
const GRAPH: ReadonlyMap<string, readonly string[]> = new Map(
  sourceFiles('src').map((file) => {
    const { importedFiles } = ts.preProcessFile(readFileSync(join(ROOT, file), 'utf8'), true, true);
    const targets = importedFiles
      .map((ref) => ref.fileName)
      .filter((specifier) => specifier.startsWith('.'))
      .map((specifier) => relative(ROOT, resolve(ROOT, dirname(file), specifier)));
    return [file, targets];
  }),
);

function violations(applies: (file: string) => boolean, forbidden: (target: string) => boolean): string[] {
  const found: string[] = [];
  for (const [file, targets] of GRAPH) {
    if (!applies(file)) continue;
    for (const target of targets) if (forbidden(target)) found.push(`${file} → ${target}`);
  }
  return found;
}

const under = (folder: string) => (path: string) => path.startsWith(`${folder}/`);

describe('import directions in src/', () => {
  it('sees the imports it checks', () => {
    assert.ok(GRAPH.size > 50);
    assert.ok(GRAPH.get('src/engines/mysql/command-stages.ts')?.includes('src/engines/mysql/sql/index.ts'));
    assert.ok(GRAPH.get('src/transport/grpc/rpc-facts.ts')?.includes('src/audit/index.ts'));
  });

  for (const folder of ['src/audit', 'src/policy', 'src/identity']) {
    it(`${folder}/ never imports from src/engines/`, () => {
      assert.deepEqual(violations(under(folder), under('src/engines')), []);
    });
  }

  it('outside engines/mysql/sql/, SQL knowledge is imported from its index.ts only', () => {
    const sql = under('src/engines/mysql/sql');
    assert.deepEqual(
      violations((file) => !sql(file), (target) => sql(target) && target !== 'src/engines/mysql/sql/index.ts'),
      [],
    );
  });

  it('the MySQL codec does not import SQL text knowledge (sql/ builds on codec/, not back)', () => {
    assert.deepEqual(violations(under('src/engines/mysql/codec'), under('src/engines/mysql/sql')), []);
  });
});
