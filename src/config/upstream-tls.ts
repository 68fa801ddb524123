/**
 * `upstream.tls` read at load: the files exist, hold what they should, the key belongs to the
 * certificate, and (with dynamic credentials) the certificate has a subject MariaDB can
 * require of lease accounts. Found here, each problem names its field and line; found at the
 * first login, it would be a refused session.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { requirementOf } from '../transport/mariadb-client-tls.ts';
import type { ConfigProblem } from './describe.ts';
import type { MeshgateConfig } from './schema.ts';

const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;
const ISSUE = 'e.g. `meshgate ca issue-server --dns meshgate-upstream --name upstream`';

export function upstreamTlsProblems(config: MeshgateConfig, abs: (path: string) => string): ConfigProblem[] {
  const tls = config.upstream?.tls;
  if (tls === undefined) return [];
  const at = (field: 'ca' | 'cert' | 'key'): PropertyKey[] => ['upstream', 'tls', field];
  const fixes = {
    ca: "give the PEM CA that signs MariaDB's ssl_cert",
    cert: `issue meshgate's client certificate toward MariaDB, ${ISSUE}`,
    key: 'give the private key of upstream.tls.cert',
  } as const;
  const absent = (['ca', 'cert', 'key'] as const).filter((field) => !existsSync(abs(tls[field])));
  if (absent.length > 0) {
    return absent.map((field) => {
      const resolved = abs(tls[field]) === tls[field] ? '' : ` (${abs(tls[field])})`;
      return { path: at(field), message: `${tls[field]}${resolved} does not exist; ${fixes[field]}` };
    });
  }
  const problems: ConfigProblem[] = [];
  const read = (field: 'ca' | 'cert' | 'key') => readFileSync(abs(tls[field]), 'utf8');
  const certificates = (field: 'ca' | 'cert'): X509Certificate[] => {
    try {
      return (read(field).match(PEM_CERTIFICATE) ?? []).map((pem) => new X509Certificate(pem));
    } catch {
      return [];
    }
  };
  if (certificates('ca').length === 0) problems.push({ path: at('ca'), message: `${tls.ca} holds no PEM certificate; ${fixes.ca}` });
  const [certificate] = certificates('cert');
  if (certificate === undefined) {
    problems.push({ path: at('cert'), message: `${tls.cert} holds no PEM certificate; ${fixes.cert}` });
    return problems;
  }
  let key;
  try {
    key = createPrivateKey(read('key'));
  } catch {
    problems.push({ path: at('key'), message: `${tls.key} is not a PEM private key; ${fixes.key}` });
    return problems;
  }
  if (!certificate.checkPrivateKey(key)) {
    problems.push({ path: at('key'), message: `${tls.key} is not the private key of ${tls.cert}; give the key it was issued with` });
  }
  if (config.upstream?.credentials !== undefined && requirementOf(certificate.raw) === null) {
    problems.push({
      path: at('cert'),
      message:
        `${tls.cert} has an empty subject (an SVID?), or one with characters MariaDB's REQUIRE SUBJECT compares differently: ` +
        `lease accounts require meshgate's certificate by subject and issuer; issue one with a plain subject, ${ISSUE}`,
    });
  }
  return problems;
}
