import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseYamlWithPositions, type Locate } from '../../../src/config/yaml-positions.ts';

function locator(text: string): Locate {
  const parsed = parseYamlWithPositions(text);
  assert.ok(parsed.ok);
  return parsed.locate;
}

const at = (locate: Locate, path: PropertyKey[]) => {
  const position = locate(path);
  return position === null ? null : [position.line, position.column];
};

describe('yaml positions', () => {
  const text = `listener:
  port: 3307
  tls: { cert: a.crt, key: a.key }
trust:
  bundles:
    - one.pem
    - two.pem
roles:
  3306: { user: u }
`;

  it('points at the key of a field, in block and flow mappings', () => {
    const locate = locator(text);
    assert.deepEqual(at(locate, ['listener', 'port']), [2, 3]);
    assert.deepEqual(at(locate, ['listener', 'tls', 'key']), [3, 23]);
  });

  it('points at a list item by index', () => {
    assert.deepEqual(at(locator(text), ['trust', 'bundles', 1]), [7, 7]);
  });

  it('points at the nearest parent of a missing field, and nowhere for a missing section', () => {
    const locate = locator(text);
    assert.deepEqual(at(locate, ['listener', 'tls', 'mode']), [3, 3]);
    assert.deepEqual(at(locate, ['trust', 'bundles', 5]), [5, 3]);
    assert.equal(locate(['policy', 'dir']), null);
  });

  it('points at the document for the file as a whole', () => {
    assert.deepEqual(at(locator('\n\n- a\n'), []), [3, 1]);
  });

  it('matches keys YAML reads as numbers with the text zod reports', () => {
    assert.deepEqual(at(locator(text), ['roles', '3306', 'user']), [9, 11]);
  });

  it('follows aliases to where the value is written', () => {
    const locate = locator('base: &b { port: x }\nlistener: *b\n');
    assert.deepEqual(at(locate, ['listener', 'port']), [1, 12]);
  });

  it('reports syntax errors with their position and without the snippet', () => {
    const parsed = parseYamlWithPositions('a: 1\na: 2\nb: [\n');
    assert.ok(!parsed.ok);
    assert.deepEqual(
      parsed.problems.map((p) => [p.message, p.position?.line]),
      [
        ['Map keys must be unique', 2],
        ['Flow sequence in block collection must be sufficiently indented and end with a ]', 4],
      ],
    );
  });
});
