/**
 * The agent's loop on a frozen clock: the request is answered in-process by the real CA
 * (verifyCsr + signSvidForKey), and sleeping only moves the clock.
 */
import { after, before, beforeEach, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { initCa } from '../../../../src/identity/ca.ts';
import { AGENT_EXIT, runAgent, type AgentDeps, type AgentOptions, type WrittenSvid } from '../../../../src/identity/agent/loop.ts';
import type { SvidOutcome, SvidRequest } from '../../../../src/identity/agent/client.ts';
import { generateKeyAndCsr, signSvidForKey, verifyCsr } from '../../../../src/identity/signer/index.ts';
import { makeTempDir } from '../../../helpers/certs.ts';

const ID = 'spiffe://example.org/ns/shop/sa/orders';
const T0 = Date.parse('2030-01-01T00:00:00Z');
const HOUR = 3_600_000;
const RETRY = { attempts: 4, initialDelayMs: 1000, maxDelayMs: 8000 };

describe('agent loop', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let caDir: string;
  let tokenFile: string;
  let t: number;
  let sleeps: number[];
  let requests: SvidRequest[];
  /** What the endpoint does next: sign, or answer with a failure. */
  let script: ((request: SvidRequest) => Promise<SvidOutcome> | SvidOutcome)[];
  /** What the endpoint does once the script has run out. */
  let otherwise: (request: SvidRequest) => Promise<SvidOutcome> | SvidOutcome;

  before(async () => {
    tmp = await makeTempDir();
    caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: 'example.org', now: new Date(T0 - HOUR) });
    tokenFile = join(tmp.dir, 'token');
  });
  after(() => tmp.cleanup());
  beforeEach(async () => {
    t = T0;
    sleeps = [];
    requests = [];
    script = [];
    otherwise = sign;
    await writeFile(tokenFile, 'token-1\n');
  });

  async function sign(request: SvidRequest): Promise<SvidOutcome> {
    const { publicKey } = await verifyCsr(request.csrPem);
    const signed = await signSvidForKey({ caDir, publicKey, spiffeId: ID, ttlSeconds: 3600, now: new Date(t) });
    return { ok: true, svid: { certificatePem: signed.certificatePem, bundlePem: signed.bundlePem, notAfter: signed.notAfter, spiffeId: ID, serialNumber: signed.serialNumber } };
  }
  const down: SvidOutcome = { ok: false, failure: { kind: 'unreachable', status: null, code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' } };
  const refused: SvidOutcome = { ok: false, failure: { kind: 'refused', status: 401, code: 'MG_TOKEN_EXPIRED', message: 'the token expired' } };

  function agent(overrides: Partial<AgentOptions>, deps: Partial<AgentDeps> = {}) {
    const stop = new AbortController();
    const written: WrittenSvid[] = [];
    const warnings: string[] = [];
    const result = runAgent(
      { endpoint: new URL('https://meshgate.test:8443'), caBundleFile: join(caDir, 'bundle.pem'), outDir: join(tmp.dir, 'out'), credential: { kind: 'token-file', path: tokenFile }, retry: RETRY, ...overrides },
      {
        now: () => new Date(t),
        sleep: async (ms) => {
          sleeps.push(ms);
          t += ms;
        },
        random: () => 1,
        signal: stop.signal,
        log: { info: () => {}, warn: (line) => warnings.push(line) },
        onWrite: (w) => written.push(w),
        request: async (request) => {
          requests.push(request);
          const next = script.shift() ?? otherwise;
          return next(request);
        },
        ...deps,
      },
    );
    return { result, stop, written, warnings };
  }

  it('renews at half-life with a new key, re-reading the token file each time', async () => {
    const run = agent({});
    const { written } = run;
    script = [
      async (r) => {
        const answer = await sign(r);
        await writeFile(tokenFile, 'token-2\n'); // kubelet rotated the projected token
        return answer;
      },
      sign,
      async (r) => {
        run.stop.abort(); // stop after the third certificate is written
        return sign(r);
      },
    ];
    const result = await run.result;
    assert.deepEqual(result, { exitCode: AGENT_EXIT.ok, error: null, written: 3 });
    assert.deepEqual(written.map((w) => w.renewAt?.getTime() ?? null).slice(0, 2), [T0 + HOUR / 2, T0 + HOUR]);
    assert.deepEqual(requests.map((r) => r.bearer), ['token-1', 'token-2', 'token-2']);
    assert.equal(new Set(requests.map((r) => r.csrPem)).size, 3, 'every renewal sends a CSR for a new key');
    assert.ok(sleeps.every((ms) => ms <= 60_000), 'long sleeps are sliced so the clock is re-read');
    const cert = new X509Certificate(await readFile(join(tmp.dir, 'out', 'svid.crt')));
    assert.equal(cert.serialNumber, written[2]?.serialNumber);
  });

  it('gives the first certificate a bounded number of attempts, then exits 69', async () => {
    otherwise = () => down;
    const { result, warnings } = agent({});
    const outcome = await result;
    assert.equal(outcome.exitCode, AGENT_EXIT.unavailable);
    assert.equal(outcome.error?.code, 'MG_SIGNER_UNAVAILABLE');
    assert.match(outcome.error?.message ?? '', /ECONNREFUSED.*check --endpoint.*gave up after 4 attempts/);
    assert.deepEqual(sleeps, [1000, 2000, 4000]);
    assert.equal(warnings.length, 3);
    assert.equal(requests.length, 4);
  });

  it('waits out a busy endpoint, and never takes an unknown code from it', async () => {
    const busy: SvidOutcome = { ok: false, failure: { kind: 'busy', status: 503, code: 'MG_CA_BUSY', message: 'the CA is locked' } };
    script = [() => busy, sign];
    const first = agent({ once: true });
    assert.equal((await first.result).exitCode, AGENT_EXIT.ok);
    assert.match(first.warnings.join('\n'), /\[MG_SIGNER_UNAVAILABLE\] .*cannot issue right now \(HTTP 503, \[MG_CA_BUSY\] the CA is locked\).*retrying in 1\.0 s/);
    script = [() => ({ ok: false, failure: { kind: 'protocol', status: 400, code: 'constructor', message: 'odd' } })];
    const odd = await agent({ once: true }).result;
    assert.equal(odd.exitCode, AGENT_EXIT.protocol);
    assert.equal(odd.error?.code, 'MG_SIGNER_RESPONSE_INVALID');
  });

  it('keeps retrying a renewal until the certificate on disk expires', async () => {
    script = [sign];
    otherwise = () => down;
    const { result, written } = agent({});
    const outcome = await result;
    assert.equal(outcome.exitCode, AGENT_EXIT.unavailable);
    assert.match(outcome.error?.message ?? '', /before the certificate on disk expired at 2030-01-01T01:00:00\.000Z/);
    assert.ok(requests.length > RETRY.attempts + 1, `${requests.length} requests`);
    assert.ok(t <= (written[0]?.notAfter.getTime() ?? 0), 'never slept past the expiry');
  });

  it('does not retry a refused credential: exit 77 at once, even when renewing', async () => {
    script = [sign, () => refused];
    const outcome = await agent({}).result;
    assert.equal(outcome.exitCode, AGENT_EXIT.refused);
    assert.equal(outcome.error?.code, 'MG_TOKEN_EXPIRED');
    assert.match(outcome.error?.message ?? '', /refused the credential: the token expired; check that .*token is a projected service-account token/);
    assert.equal(requests.length, 2);
  });

  it('writes nothing when the answer is a certificate for another key (exit 76)', async () => {
    script = [async (request) => sign({ ...request, csrPem: (await generateKeyAndCsr()).csrPem })];
    const out = join(tmp.dir, 'other-key');
    const outcome = await agent({ outDir: out, once: true }).result;
    assert.equal(outcome.exitCode, AGENT_EXIT.protocol);
    assert.match(outcome.error?.message ?? '', /not for the key the agent sent; nothing was written/);
    await assert.rejects(readFile(join(out, 'svid.crt')), { code: 'ENOENT' });
  });

  it('exits 66 when the token file is missing at the start, and retries when it goes missing later', async () => {
    const missing = await agent({ credential: { kind: 'token-file', path: join(tmp.dir, 'no-token') }, once: true }).result;
    assert.equal(missing.exitCode, AGENT_EXIT.noInput);
    assert.match(missing.error?.message ?? '', /cannot read --token-file .*no-token \(ENOENT\)/);
    assert.equal(requests.length, 0);

    const run = agent({}, {
      sleep: async (ms) => {
        sleeps.push(ms);
        t += ms;
        // The first retry's pause: by now kubelet has finished writing the new token.
        if (ms === RETRY.initialDelayMs) await writeFile(tokenFile, 'token-3\n');
      },
    });
    script = [async (r) => {
      const answer = await sign(r);
      await writeFile(tokenFile, ''); // kubelet mid-rotation: empty for a moment
      return answer;
    }, async (r) => {
      run.stop.abort();
      return sign(r);
    }];
    const outcome = await run.result;
    assert.equal(outcome.exitCode, AGENT_EXIT.ok);
    assert.equal(outcome.written, 2);
    assert.deepEqual(requests.map((r) => r.bearer), ['token-1', 'token-3']);
    assert.match(run.warnings.join('\n'), /token is empty.*retrying in 1\.0 s/);
  });

  it('presents its certificate to renew once the join token is spent', async () => {
    const run = agent({ credential: { kind: 'join-token', token: 'mgjoin_x' } });
    let held = '';
    script = [sign, async (r) => {
      held = await readFile(join(tmp.dir, 'out', 'svid.crt'), 'utf8');
      run.stop.abort();
      return sign(r);
    }];
    await run.result;
    assert.equal(requests[0]?.bearer, 'mgjoin_x');
    assert.equal(requests[1]?.bearer, undefined);
    assert.equal(requests[1]?.clientCert?.certPem, held);
  });

  it('exits 73 when the output directory cannot be written', async () => {
    const outcome = await agent({ outDir: join(tokenFile, 'sub'), once: true }).result;
    assert.equal(outcome.exitCode, AGENT_EXIT.cantCreate);
    assert.match(outcome.error?.message ?? '', /cannot write the certificate files in --out/);
  });

  it('stops cleanly when aborted while sleeping', async () => {
    const stop = new AbortController();
    const outcome = await agent({}, { signal: stop.signal, sleep: async () => void stop.abort() }).result;
    assert.deepEqual(outcome, { exitCode: AGENT_EXIT.ok, error: null, written: 1 });
  });
});
