/**
 * The import graph of src/ shows DESIGN's stages ("Layout"): no cycle between folders, lower
 * folders never reach back up into an engine or the commands, and a folder with a public
 * surface is entered through its index.ts. Reads every import, `export … from`, `import()`
 * and `require()` in src/ with TypeScript's own pre-parser; a failure lists the offending
 * imports as `importer → imported`.
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

type Edge = readonly [from: string, to: string];
const EDGES: readonly Edge[] = [...GRAPH].flatMap(([file, targets]) => targets.map((target): Edge => [file, target]));

/** Asserts that no edge is left, naming every one that is. */
function noEdges(found: readonly Edge[], rule: string): void {
  const lines = found.map(([from, to]) => `  ${from} → ${to}`);
  assert.ok(found.length === 0, `${rule}; offending imports:\n${lines.join('\n')}`);
}

function violations(applies: (file: string) => boolean, forbidden: (target: string) => boolean): Edge[] {
  return EDGES.filter(([from, to]) => applies(from) && forbidden(to));
}

const under = (folder: string) => (path: string) => path.startsWith(`${folder}/`);
const anyOf =
  (...tests: ((path: string) => boolean)[]) =>
  (path: string) =>
    tests.some((test) => test(path));

/**
 * The node of the folder graph a file belongs to: its top-level folder of src/, except that
 * each engine (src/engines/<engine>) and each transport (src/transport/<kind>) is a node of
 * its own, and so is each file directly in src/ or src/engines/ (server.ts, log.ts, the
 * engine interface and registry).
 */
function nodeOf(file: string): string {
  const parts = file.split('/');
  if (parts.length === 2) return file;
  if (parts[1] === 'engines' || parts[1] === 'transport') return parts.length === 3 ? file : parts.slice(0, 3).join('/');
  return parts.slice(0, 2).join('/');
}

/** Strongly connected components of more than one node (Tarjan), each as its node names. */
function cycles(nodes: readonly string[], next: (node: string) => readonly string[]): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, index.size);
    low.set(node, index.get(node)!);
    stack.push(node);
    onStack.add(node);
    for (const other of next(node)) {
      if (!index.has(other)) {
        visit(other);
        low.set(node, Math.min(low.get(node)!, low.get(other)!));
      } else if (onStack.has(other)) {
        low.set(node, Math.min(low.get(node)!, index.get(other)!));
      }
    }
    if (low.get(node) !== index.get(node)) return;
    const component: string[] = [];
    let member: string;
    do {
      member = stack.pop()!;
      onStack.delete(member);
      component.push(member);
    } while (member !== node);
    if (component.length > 1) found.push(component.sort());
  };
  for (const node of nodes) if (!index.has(node)) visit(node);
  return found;
}

/** Stages below the engines: they never import an engine, a command, the demo, the admin API or the composition root. */
const LOWER = ['src/identity', 'src/policy', 'src/policy-reload', 'src/throttle', 'src/credentials', 'src/audit', 'src/store', 'src/transport', 'src/dev', 'src/errors', 'src/render-istio'];
const ABOVE_ENGINES = anyOf(under('src/cli'), under('src/demo'), under('src/admin'), (path) => path === 'src/server.ts');

/** Folders with a public surface: code outside imports their index.ts, code inside imports files directly. */
const SURFACES = [
  'src/audit',
  'src/policy',
  'src/policy-reload',
  'src/identity',
  'src/credentials',
  'src/store',
  'src/throttle',
  'src/transport/grpc',
  'src/transport/http',
  'src/engines/mysql/sql',
  'src/render-istio',
];

describe('import directions in src/', () => {
  it('sees the imports it checks', () => {
    assert.ok(GRAPH.size > 50);
    assert.ok(GRAPH.get('src/engines/mysql/command-stages.ts')?.includes('src/engines/mysql/sql/index.ts'));
    assert.ok(GRAPH.get('src/transport/grpc/rpc-facts.ts')?.includes('src/audit/index.ts'));
    assert.equal(nodeOf('src/engines/mysql/codec/framer.ts'), 'src/engines/mysql');
    assert.equal(nodeOf('src/engines/engine.ts'), 'src/engines/engine.ts');
    assert.equal(nodeOf('src/transport/grpc/front-door.ts'), 'src/transport/grpc');
    assert.equal(nodeOf('src/identity/jwt/verifier.ts'), 'src/identity');
    assert.equal(nodeOf('src/server.ts'), 'src/server.ts');
  });

  it('no import cycle between folders (each engine, each transport and each root file a node of its own)', () => {
    const next = new Map<string, Set<string>>();
    for (const [from, to] of EDGES) {
      const [a, b] = [nodeOf(from), nodeOf(to)];
      if (a !== b) next.set(a, (next.get(a) ?? new Set()).add(b));
    }
    const found = cycles([...next.keys()].sort(), (node) => [...(next.get(node) ?? [])].sort());
    const members = new Map(found.flatMap((component, i) => component.map((node) => [node, i] as const)));
    noEdges(
      EDGES.filter(([from, to]) => nodeOf(from) !== nodeOf(to) && members.has(nodeOf(from)) && members.get(nodeOf(from)) === members.get(nodeOf(to))),
      `folders that import each other: ${found.map((component) => component.join(' ⇄ ')).join('; ')}`,
    );
  });

  for (const folder of LOWER) {
    it(`${folder}/ never imports from engines/, cli/, demo/, admin/ or server.ts`, () => {
      noEdges(violations(under(folder), anyOf(under('src/engines'), ABOVE_ENGINES)), `${folder}/ reaches back up`);
    });
  }

  it('engines/ never import from cli/, demo/, admin/ or server.ts', () => {
    noEdges(violations(under('src/engines'), ABOVE_ENGINES), 'an engine reaches back up');
  });

  for (const folder of SURFACES) {
    it(`outside ${folder}/, only its index.ts is imported; inside, files import each other directly`, () => {
      const inside = under(folder);
      const index = `${folder}/index.ts`;
      noEdges(violations((file) => !inside(file), (target) => inside(target) && target !== index), `${folder}/ is entered through ${index}`);
      noEdges(violations((file) => inside(file) && file !== index, (target) => target === index), `files in ${folder}/ import each other, not their own surface`);
    });
  }

  it('the engines and the stages below them never import telemetry/ (it listens to what they publish)', () => {
    noEdges(violations(anyOf(under('src/engines'), ...LOWER.map(under)), under('src/telemetry')), 'telemetry/ is reached from the data path');
  });

  it('the MySQL codec does not import SQL text knowledge (sql/ builds on codec/, not back)', () => {
    noEdges(violations(under('src/engines/mysql/codec'), under('src/engines/mysql/sql')), 'codec/ imports sql/');
  });
});
