/**
 * The probe's Firestore link: one GetDocument through meshgate's gRPC port, with the probe's
 * certificate and a `traceparent` carrying its trace id, for a document that need not exist
 * (NOT_FOUND means the call reached Firestore, as OK does). Its `rpc` audit event must name
 * the same identity and trace.
 */
import * as grpc from '@grpc/grpc-js';
import { formatTraceparent, newSpanId } from '../audit/index.ts';
import { broken, holds, type LinkResult } from './report.ts';

export interface FirestoreProbeTarget {
  readonly address: string;
  readonly project: string;
  /** The document path the probe reads, e.g. `meshgate-probe/probe`. */
  readonly document: string;
  readonly tls: { readonly cert: string; readonly key: string; readonly ca: string };
  /** The name meshgate's certificate is checked against; default the address's host. */
  readonly serverName?: string;
  readonly timeoutMs: number;
}

const GET_DOCUMENT = '/google.firestore.v1.Firestore/GetDocument';

/** GetDocumentRequest { name = 1 }: one length-delimited string field. */
function getDocumentRequest(name: string): Buffer {
  const bytes = Buffer.from(name, 'utf8');
  const length: number[] = [];
  let n = bytes.length;
  do {
    length.push((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
    n >>>= 7;
  } while (n > 0);
  return Buffer.concat([Buffer.of(0x0a, ...length), bytes]);
}

export async function probeFirestore(target: FirestoreProbeTarget, identity: string, traceId: string): Promise<LinkResult> {
  const credentials = grpc.credentials.createSsl(Buffer.from(target.tls.ca), Buffer.from(target.tls.key), Buffer.from(target.tls.cert));
  const options = target.serverName === undefined ? {} : { 'grpc.ssl_target_name_override': target.serverName };
  const client = new grpc.Client(target.address, credentials, options);
  const metadata = new grpc.Metadata();
  metadata.set('traceparent', formatTraceparent({ traceId, spanId: newSpanId(), flags: '01' }));
  const name = `projects/${target.project}/databases/(default)/documents/${target.document}`;
  try {
    const status = await new Promise<grpc.status>((resolve) => {
      client.makeUnaryRequest(
        GET_DOCUMENT,
        (b: Buffer) => b,
        (b: Buffer) => b,
        getDocumentRequest(name),
        metadata,
        { deadline: Date.now() + target.timeoutMs },
        (error) => resolve(error === null ? grpc.status.OK : (error.code ?? grpc.status.UNKNOWN)),
      );
    });
    if (status === grpc.status.OK || status === grpc.status.NOT_FOUND) return holds('firestore', `GetDocument ${target.document} through meshgate at ${target.address} reached Firestore (${grpc.status[status]})`);
    return broken('firestore', `GetDocument ${target.document} through meshgate at ${target.address} ended ${grpc.status[status]}: check that meshgate's Firestore port runs, trusts the probe's certificate and that policy lets ${identity} read ${target.document}`);
  } finally {
    client.close();
  }
}
