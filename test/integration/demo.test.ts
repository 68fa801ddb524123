/** `meshgate demo` end to end, as `npm run demo` runs it (real MariaDB, real clients). */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runCli } from '../../src/cli/main.ts';
import { captureIO } from '../helpers/cli.ts';
import { serviceMissing } from '../helpers/services.ts';

const missing = await serviceMissing('mariadb');

describe('meshgate demo', { skip: missing }, () => {
  it('shows allowed and denied outcomes, the audit lines and an intact chain, then cleans up MariaDB', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'meshgate-demo-'));
    const io = captureIO(dir);
    try {
      const code = await runCli(['demo', '--dir', dir], io);
      const text = io.all.join('\n');
      assert.equal(code, 0, text);
      assert.match(text, /orders\s+ALLOWED\s+INSERT/);
      assert.match(text, /analytics\s+DENIED\s+INSERT[\s\S]*MariaDB 1142/);
      assert.match(text, /staging\s+DENIED[\s\S]*\[MG_POLICY_DENIED\] denied by rule deny-non-production/);
      assert.match(text, /\[MG_CLIENT_CERT_MISSING\]/);
      assert.match(text, /\[MG_TLS_REQUIRED\]/);
      assert.match(text, /trace=4bf92f35/, 'the traceparent of the demo query reaches the audit line');
      assert.match(text, /chain intact/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
