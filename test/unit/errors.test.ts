import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ERROR_CODES, mgError, asMeshgateError } from '../../src/errors/index.ts';
import { toErrPacket } from '../../src/engines/mysql/errors.ts';

describe('error registry', () => {
  const documented = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

  it('documents every code in docs/errors.md', () => {
    for (const code of Object.keys(ERROR_CODES)) assert.ok(documented.includes(`\`${code}\``), `${code} is not documented`);
  });

  it('uses the MG_ prefix and upper snake case for every code', () => {
    for (const code of Object.keys(ERROR_CODES)) assert.match(code, /^MG_[A-Z0-9_]+$/);
  });

  it('renders kinds as MySQL errors a client understands', () => {
    assert.deepEqual(toErrPacket(mgError('MG_TLS_REQUIRED', 'use TLS')), { code: 1045, sqlState: '28000', message: '[MG_TLS_REQUIRED] use TLS' });
    assert.equal(toErrPacket(mgError('MG_POLICY_DENIED', 'x')).code, 1044);
    assert.equal(toErrPacket(mgError('MG_COMMAND_FORBIDDEN', 'x')).code, 1227);
  });

  it('hides the text of unexpected errors from clients', () => {
    const wrapped = asMeshgateError(new Error('password=hunter2 at /secret/path'));
    assert.equal(wrapped.code, 'MG_INTERNAL');
    assert.ok(!wrapped.message.includes('hunter2'));
  });
});
