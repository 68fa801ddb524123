/**
 * Certificate signing requests (PKCS#10, RFC 2986) as the signing endpoint accepts them.
 * A CSR proves one thing only: that its sender holds the private key of the public key in
 * it. Everything else it asks for (subject, SANs, extensions) is ignored: the SPIFFE ID comes
 * from the verified credential, so a CSR can never widen what its sender gets.
 */
import { mgError, type MeshgateError } from '../../errors/index.ts';
import { generateKeyPair, privateKeyToPem, SIGNING_ALGORITHM, x509 } from '../x509.ts';

/** A PEM CSR for a P-256 key is under 1 KiB; anything far larger is not one we asked for. */
export const CSR_MAX_CHARS = 16_384;

const PEM_CSR = /^-----BEGIN CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE REQUEST-----\s*$/;

export interface VerifiedCsr {
  /** Verified: the CSR's signature was made with the matching private key. */
  readonly publicKey: x509.PublicKey;
}

function invalid(problem: string, cause?: unknown): MeshgateError {
  return mgError('MG_CSR_INVALID', `${problem}; send a PEM PKCS#10 CSR for an ECDSA P-256 key, signed with that key (meshgate agent does)`, cause);
}

/**
 * Parses one PEM CSR, checks its key is ECDSA P-256 (what meshgate's CA signs and what
 * verifiers across the mesh accept) and that its signature verifies with that key.
 * Throws MG_CSR_INVALID saying which.
 */
export async function verifyCsr(pem: unknown): Promise<VerifiedCsr> {
  if (typeof pem !== 'string' || pem === '') throw invalid('the request has no csr');
  if (pem.length > CSR_MAX_CHARS) throw invalid(`the csr is longer than ${CSR_MAX_CHARS} characters`);
  if (!PEM_CSR.test(pem.trim())) throw invalid('the csr is not one PEM block labelled CERTIFICATE REQUEST');
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(pem.trim());
  } catch (error) {
    throw invalid('the csr does not decode as PKCS#10', error);
  }
  const algorithm = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (algorithm.name !== 'ECDSA' || algorithm.namedCurve !== 'P-256') {
    const what = algorithm.name === 'ECDSA' ? `ECDSA ${algorithm.namedCurve ?? '(unknown curve)'}` : (algorithm.name ?? 'an unknown algorithm');
    throw invalid(`the csr's key is ${what}, not ECDSA P-256`);
  }
  let verified: boolean;
  try {
    verified = await csr.verify();
  } catch (error) {
    // A body altered in transit can fail to parse inside verify() rather than verify false.
    throw invalid("the csr's signature cannot be checked", error);
  }
  if (!verified) throw invalid("the csr's signature does not verify with its own key (altered, or signed with another key)");
  return { publicKey: csr.publicKey };
}

export interface KeyAndCsr {
  /** PKCS#8 PEM; written to disk by the agent and never sent anywhere. */
  readonly keyPem: string;
  readonly csrPem: string;
}

/** A fresh ECDSA P-256 key and a CSR for it with an empty subject (the server names the workload). */
export async function generateKeyAndCsr(): Promise<KeyAndCsr> {
  const keys = await generateKeyPair();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({ keys, signingAlgorithm: SIGNING_ALGORITHM });
  const csrPem = csr.toString('pem');
  return { keyPem: await privateKeyToPem(keys.privateKey), csrPem: csrPem.endsWith('\n') ? csrPem : `${csrPem}\n` };
}
