/**
 * `meshgate agent` against a real signing endpoint: a CA in a temp dir, Kubernetes
 * service-account tokens verified against a JWKS server, the agent run in-process through
 * its CLI command (so exit statuses are the real ones), and openssl as an outside verifier.
 */
import { after, before, describe, it } from 'node:test';
import * as assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { UsageError, type CliIO, type OptionValues } from '../../src/cli/command.ts';
import { agentCommands, createAgentCommand, type AgentCommandOptions } from '../../src/cli/commands/agent.ts';
import { initCa, issueServerCert } from '../../src/identity/ca.ts';
import { createTokenVerifier } from '../../src/identity/jwt/index.ts';
import { JoinTokenStore, startSigningEndpoint, type SigningEndpoint } from '../../src/identity/signer/index.ts';
import { watchTlsMaterial } from '../../src/identity/tls-material.ts';
import { makeTempDir } from '../helpers/certs.ts';
import { makeSigningKey, signToken, startJwksServer, type JwksServer, type SigningKey } from '../helpers/jwks-server.ts';
import { cleanup } from '../helpers/cleanup.ts';

const run = promisify(execFile);
const TRUST_DOMAIN = 'example.org';
const ISSUER = 'https://kubernetes.default.svc.cluster.local';
const FAST_RETRY: AgentCommandOptions = { retry: { attempts: 3, initialDelayMs: 20, maxDelayMs: 50 }, timeoutMs: 2000 };

function k8sClaims(namespace: string, serviceAccount: string, audience = 'meshgate') {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: ISSUER,
    aud: [audience],
    sub: `system:serviceaccount:${namespace}:${serviceAccount}`,
    'kubernetes.io': { namespace, serviceaccount: { name: serviceAccount, uid: '0d5f' } },
    exp: now + 600,
    iat: now - 5,
    nbf: now - 5,
  };
}

interface Run {
  readonly code: number;
  readonly out: string;
  readonly err: string;
}

/** Runs one command the way main.ts does (parseArgs, then run), capturing its output. */
async function runCommand(argv: string[], options: AgentCommandOptions = FAST_RETRY, cwd = process.cwd()): Promise<Run> {
  const commands = [createAgentCommand(options), ...agentCommands.slice(1)];
  const command = commands.find((c) => c.path.every((word, i) => argv[i] === word));
  assert.ok(command, `no command for ${argv.join(' ')}`);
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIO = { out: (l) => out.push(l), err: (l) => err.push(l), cwd, env: {} };
  const parsed = parseArgs({ args: argv.slice(command.path.length), options: command.options, strict: true });
  const code = await command.run(parsed.values as OptionValues, parsed.positionals, io);
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('meshgate agent with a real signing endpoint', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let caDir: string;
  let jwks: JwksServer;
  let key: SigningKey;
  let endpoint: SigningEndpoint;
  let shortEndpoint: SigningEndpoint;
  let tokenFile: string;
  const logged: string[] = [];

  before(async () => {
    tmp = await makeTempDir('meshgate-agent-');
    caDir = join(tmp.dir, 'ca');
    await initCa({ dir: caDir, trustDomain: TRUST_DOMAIN });
    const server = await issueServerCert({ caDir, outDir: join(tmp.dir, 'server'), ipAddresses: ['127.0.0.1'] });
    key = await makeSigningKey('ES256', 'k8s-1');
    jwks = await startJwksServer([key.jwk]);
    const verifier = await createTokenVerifier({
      issuers: [{ issuer: ISSUER, audiences: ['meshgate'], jwks: { url: jwks.url, caFile: jwks.caFile }, mapping: { kind: 'kubernetes' }, trustDomain: TRUST_DOMAIN }],
    });
    const common = {
      host: '127.0.0.1',
      port: 0,
      tls: { cert: server.certPath, key: server.keyPath },
      caDir,
      verifyToken: (token: string) => verifier.verify(token),
      joinTokens: new JoinTokenStore(caDir),
      log: { info: (m: string, f?: object) => logged.push(`${m} ${JSON.stringify(f)}`), warn: (m: string, f?: object) => logged.push(`${m} ${JSON.stringify(f)}`) },
    };
    endpoint = await startSigningEndpoint(common);
    // A few seconds of lifetime, so a renewal at half-life happens within the test.
    shortEndpoint = await startSigningEndpoint({ ...common, svidTtlSeconds: 4 });
    tokenFile = join(tmp.dir, 'token');
    await writeFile(tokenFile, `${await signToken(key, k8sClaims('shop', 'orders'))}\n`);
  });

  after(async () => {
    await cleanup(
      () => endpoint?.close(),
      () => shortEndpoint?.close(),
      () => jwks?.close(),
      () => tmp?.cleanup(),
    );
  });

  const args = (port: number, out: string, ...more: string[]) => [
    'agent', '--endpoint', `https://127.0.0.1:${port}`, '--ca-bundle', join(caDir, 'bundle.pem'), '--out', out, ...more,
  ];

  it('--once writes key (0600), certificate and bundle that openssl verifies, and exits 0', async () => {
    const out = join(tmp.dir, 'once');
    const result = await runCommand(args(endpoint.port, out, '--token-file', tokenFile, '--once'));
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /wrote .*svid\.crt for spiffe:\/\/example\.org\/ns\/shop\/sa\/orders/);
    const cert = new X509Certificate(await readFile(join(out, 'svid.crt')));
    assert.equal(cert.subjectAltName, 'URI:spiffe://example.org/ns/shop/sa/orders');
    assert.ok(cert.checkPrivateKey(createPrivateKey(await readFile(join(out, 'svid.key')))));
    assert.equal((await stat(join(out, 'svid.key'))).mode & 0o777, 0o600);
    const verified = await run('openssl', ['verify', '-CAfile', join(out, 'bundle.pem'), join(out, 'svid.crt')]);
    assert.match(verified.stdout, /svid\.crt: OK/);
    // The issuance is recorded for rotation, as `ca issue` records it.
    const metadata = JSON.parse(await readFile(join(caDir, 'ca.json'), 'utf8')) as { roots: { issuedUntil: string | null }[] };
    assert.ok(metadata.roots.some((r) => r.issuedUntil !== null && new Date(r.issuedUntil).getTime() >= new Date(cert.validTo).getTime()));
    assert.ok(!logged.join('\n').includes((await readFile(tokenFile, 'utf8')).trim()), 'the token must never be logged');
  });

  it('renews at half-life with a new key and serial, and a reloading reader picks it up', async () => {
    const out = join(tmp.dir, 'renew');
    const stop = new AbortController();
    const writes: { serial: string; at: number; notAfter: Date }[] = [];
    let material: Awaited<ReturnType<typeof watchTlsMaterial>> | undefined;
    const running = runCommand(args(shortEndpoint.port, out, '--token-file', tokenFile), {
      ...FAST_RETRY,
      signal: stop.signal,
      onWrite: (w) => {
        writes.push({ serial: w.serialNumber, at: Date.now(), notAfter: w.notAfter });
        if (writes.length === 2) stop.abort();
      },
    });
    // Wait for the first certificate, then follow the files the way meshgate's listener does.
    while (writes.length === 0) await new Promise((r) => setTimeout(r, 20));
    const firstKey = await readFile(join(out, 'svid.key'), 'utf8');
    material = await watchTlsMaterial({ certFile: join(out, 'svid.crt'), keyFile: join(out, 'svid.key'), bundleFiles: [join(out, 'bundle.pem')], watch: false, pollIntervalMs: 60_000 });
    const result = await running;
    assert.equal(result.code, 0, result.err);
    assert.match(result.out, /stopped/);
    assert.equal(writes.length, 2);
    const [first, second] = writes as [(typeof writes)[0], (typeof writes)[0]];
    assert.notEqual(first.serial, second.serial);
    assert.notEqual(await readFile(join(out, 'svid.key'), 'utf8'), firstKey, 'a renewal uses a new key');
    // About half of the 4 s lifetime (notAfter has whole seconds); never at once, though notBefore is backdated 60 s.
    const gap = second.at - first.at;
    assert.ok(gap >= 1200 && gap <= 3500, `renewed after ${gap} ms`);
    assert.ok(await material.reload(), 'a reader re-reading the files loads the renewed pair');
    material.close();
    await run('openssl', ['verify', '-CAfile', join(out, 'bundle.pem'), join(out, 'svid.crt')]);
  });

  it('a join token gets its SPIFFE ID once; renewals present the certificate instead', async () => {
    const created = await runCommand(['ca', 'join-token', '--dir', caDir, '--spiffe-id', 'spiffe://example.org/vm/builder-1']);
    assert.equal(created.code, 0, created.err);
    const token = created.out.trim();
    const out = join(tmp.dir, 'join');
    const stop = new AbortController();
    const ids: string[] = [];
    const result = await runCommand(args(shortEndpoint.port, out, '--join-token', token), {
      ...FAST_RETRY,
      signal: stop.signal,
      onWrite: (w) => {
        ids.push(w.spiffeId);
        if (ids.length === 2) stop.abort();
      },
    });
    assert.equal(result.code, 0, result.err);
    assert.deepEqual(ids, ['spiffe://example.org/vm/builder-1', 'spiffe://example.org/vm/builder-1']);
    const again = await runCommand(args(endpoint.port, join(tmp.dir, 'join2'), '--join-token', token, '--once'));
    assert.equal(again.code, 77);
    assert.match(again.err, /\[MG_JOIN_TOKEN_INVALID\] .*already used/);
  });

  it('stops on SIGTERM with exit 0, as a real process', async () => {
    const out = join(tmp.dir, 'sigterm');
    const script = [
      `import { agentCommand } from ${JSON.stringify(new URL('../../src/cli/commands/agent.ts', import.meta.url).pathname)};`,
      `const argv = ${JSON.stringify(args(endpoint.port, out, '--token-file', tokenFile).slice(1))};`,
      "const io = { out: (l) => console.log(l), err: (l) => console.error(l), cwd: process.cwd(), env: process.env };",
      'const values = {}; for (let i = 0; i < argv.length; i += 2) values[argv[i].slice(2)] = argv[i + 1];',
      'process.exitCode = await agentCommand.run(values, [], io);',
    ].join('\n');
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (stdout.includes('renewing at')) resolve();
      });
      child.once('exit', () => reject(new Error(`agent exited early: ${stdout}${stderr}`)));
    });
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.match(stdout, /stopped; the files on disk stay valid/);
  });

  it('a refused token exits 77 saying what to check, and writes nothing', async () => {
    const badToken = join(tmp.dir, 'bad-token');
    await writeFile(badToken, await signToken(key, k8sClaims('shop', 'orders', 'kubernetes')));
    const out = join(tmp.dir, 'refused');
    const result = await runCommand(args(endpoint.port, out, '--token-file', badToken, '--once'));
    assert.equal(result.code, 77);
    assert.match(result.err, /\[MG_TOKEN_AUDIENCE\] .*refused the credential: .*check that .*bad-token is a projected service-account token/);
    await assert.rejects(stat(join(out, 'svid.crt')), { code: 'ENOENT' });
  });

  it('an endpoint that is down exits 69 within the retry budget', async () => {
    const down = await startSigningEndpoint({ host: '127.0.0.1', port: 0, tls: { cert: join(tmp.dir, 'server', 'server.crt'), key: join(tmp.dir, 'server', 'server.key') }, caDir });
    const port = down.port;
    await down.close();
    const started = Date.now();
    const result = await runCommand(args(port, join(tmp.dir, 'down'), '--token-file', tokenFile, '--once'));
    assert.equal(result.code, 69);
    assert.match(result.err, /\[MG_SIGNER_UNAVAILABLE\] .*ECONNREFUSED.*check --endpoint.*\(gave up after 3 attempts\)/);
    assert.equal(result.err.match(/retrying in/g)?.length, 2);
    assert.ok(Date.now() - started < 2000);
  });

  it('an endpoint whose certificate --ca-bundle does not trust exits 78', async () => {
    const out = join(tmp.dir, 'untrusted');
    const argv = ['agent', '--endpoint', `https://127.0.0.1:${endpoint.port}`, '--ca-bundle', jwks.caFile, '--out', out, '--token-file', tokenFile, '--once'];
    const result = await runCommand(argv);
    assert.equal(result.code, 78);
    assert.match(result.err, /\[MG_SIGNER_UNTRUSTED\] the endpoint's TLS certificate does not verify against --ca-bundle/);
  });

  it('bad arguments are usage errors (main.ts exits 2 for them)', async () => {
    const io: CliIO = { out: () => {}, err: () => {}, cwd: tmp.dir, env: {} };
    const command = createAgentCommand(FAST_RETRY);
    const base = { 'ca-bundle': 'b', out: 'o' };
    await assert.rejects(command.run({ ...base, endpoint: 'http://127.0.0.1:1', 'token-file': 't' }, [], io), (e: unknown) => e instanceof UsageError && /must be an https:\/\/ URL/.test(e.message));
    await assert.rejects(command.run({ ...base, endpoint: 'https://127.0.0.1:1' }, [], io), (e: unknown) => e instanceof UsageError && /give --token-file/.test(e.message));
    await assert.rejects(command.run({ ...base, endpoint: 'https://127.0.0.1:1', 'token-file': 't', 'join-token': 'j' }, [], io), UsageError);
    await assert.rejects(command.run({ ...base, endpoint: 'https://127.0.0.1:1', 'token-file': 't', name: '../x' }, [], io), UsageError);
  });
});
