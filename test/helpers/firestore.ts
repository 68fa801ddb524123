/**
 * Firestore integration tests: one Google Cloud Firestore emulator (the official, Java one)
 * per test file on its own port, one meshgate in front of it, SDK clients that reach the
 * emulator through meshgate as a workload (mTLS with that workload's SVID) and a direct
 * admin client for seeding and for checking what really happened. Each test file uses its
 * own project id, so files can run side by side.
 *
 * The in-process fallback emulator lacks ListDocuments, ListCollectionIds and BatchWrite and
 * is wrong about collection groups and transactions: these suites never run against it, they
 * skip with FIRESTORE_SKIP instead.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { dirname, join } from 'node:path';
import { Firestore } from '@google-cloud/firestore';
import * as grpc from '@grpc/grpc-js';
import protobuf from 'protobufjs';
import type { RpcEvent } from '../../src/audit/types.ts';
import type { MeshgateConfigInput } from '../../src/config/schema.ts';
import type { Logger } from '../../src/log.ts';
import { OFFICIAL_EMULATOR_JAR, officialEmulatorAvailable, startFirestoreEmulator, type RunningEmulator } from '../../src/dev/firestore-emulator.ts';
import { emulatorClientSettings, meshgateClientSettings } from '../../src/demo/firestore-sdk.ts';
import { startBareHarness, TRUST_DOMAIN, type BaseHarness } from './bare-harness.ts';

const require = createRequire(import.meta.url);
/** The grpc-js google-gax (and so the SDK) uses: its credentials pass the SDK's instanceof checks. */
export const gaxGrpc = (require('google-gax') as { grpc: typeof import('@grpc/grpc-js') }).grpc;

/**
 * `describe(..., { skip: FIRESTORE_SKIP })`: false when the official emulator is here. The
 * fixture's meshgate runs no MySQL engine, so no MariaDB is needed.
 */
export const FIRESTORE_SKIP: string | false = officialEmulatorAvailable()
  ? false
  : `needs Google's official Cloud Firestore emulator (${OFFICIAL_EMULATOR_JAR} and Java 17: ` +
    'apt-get install google-cloud-cli-firestore-emulator openjdk-17-jre-headless); the in-process ' +
    'fallback lacks ListDocuments, ListCollectionIds and BatchWrite and is wrong about collection groups and transactions';

export const FS_METHOD = (name: string) => `google.firestore.v1.Firestore/${name}`;

/** `principals` entries (Istio form, no scheme) for a workload path `ns/<ns>/sa/<sa>`. */
export const principal = (nsSa: string) => `${TRUST_DOMAIN}/${nsSa}`;
export const spiffe = (nsSa: string) => `spiffe://${TRUST_DOMAIN}/${nsSa}`;

export interface FirestoreFixtureOptions {
  /** Short name for the harness's temp dir. */
  readonly name: string;
  /** The Google Cloud project meshgate serves; distinct per test file. */
  readonly project: string;
  readonly workloads: Readonly<Record<string, string>>;
  readonly policy: string;
  readonly config?: (config: MeshgateConfigInput) => void;
  /** An emulator another fixture started (and will stop); default: start one. */
  readonly emulator?: RunningEmulator;
  /** meshgate's operational log; default silent. */
  readonly log?: Logger;
}

export interface ClientOptions {
  /** Default: the fixture's project. */
  readonly projectId?: string;
  /** Default: `(default)`. */
  readonly databaseId?: string;
  readonly customHeaders?: Record<string, string>;
}

export interface FirestoreFixture {
  readonly emulator: RunningEmulator;
  /** CA, certificates, policy and a Firestore-only meshgate (no MariaDB anywhere). */
  readonly harness: BaseHarness;
  readonly project: string;
  /** meshgate's Firestore port. */
  readonly port: number;
  /** An SDK client reaching the emulator through meshgate with `workload`'s SVID. */
  client(workload: string, options?: ClientOptions): Firestore;
  /** An SDK client talking to the emulator directly, as its owner. */
  readonly direct: Firestore;
  /** The same for another project on the same emulator. */
  directFor(projectId: string): Firestore;
  /** Deletes every document of the project. */
  reset(): Promise<void>;
  /** Deletes every document, then writes these (path → data) directly, in one batch. */
  reseed(documents: Readonly<Record<string, Record<string, unknown>>>): Promise<void>;
  /** A mark in the audit log; rpcSince(mark) gives the rpc events recorded after it. */
  mark(): Promise<number>;
  /**
   * `atLeast`: wait (up to 5 s) for that many. A query's caller has its answer when the
   * last document arrives, a moment before meshgate sees the call end and records it.
   */
  rpcSince(mark: number, atLeast?: number): Promise<RpcEvent[]>;
  /** Tracks a resource to close in stop() (a grpc-js client, a Firestore app, ...). */
  onStop(close: () => unknown): void;
  stop(): Promise<void>;
}

export async function startFirestoreFixture(options: FirestoreFixtureOptions): Promise<FirestoreFixture> {
  const ownsEmulator = options.emulator === undefined;
  const emulator = options.emulator ?? (await startFirestoreEmulator({ prefer: 'official' }));
  let harness: BaseHarness;
  try {
    harness = await startBareHarness({
      name: options.name,
      workloads: options.workloads,
      policy: options.policy,
      engines: (files) => ({
        tls: files.server,
        firestore: { port: 0, project: options.project, upstream: { emulator: `${emulator.host}:${emulator.port}` } },
      }),
      ...(options.config === undefined ? {} : { config: options.config }),
      ...(options.log === undefined ? {} : { log: options.log }),
    });
  } catch (error) {
    if (ownsEmulator) await emulator.stop();
    throw error;
  }
  const port = harness.meshgate.firestorePort;
  if (port === null) {
    await harness.stop();
    if (ownsEmulator) await emulator.stop();
    throw new Error('meshgate started without its Firestore listener');
  }
  const closers: (() => unknown)[] = [];
  const directFor = (projectId: string) => {
    const db = new Firestore({ projectId, ...emulatorClientSettings(emulator) });
    closers.push(() => db.terminate());
    return db;
  };
  const direct = directFor(options.project);

  const rpcEvents = async () => (await harness.readAudit()).filter((event) => event['type'] === 'rpc') as unknown as RpcEvent[];

  return {
    emulator,
    harness,
    project: options.project,
    port,
    direct,
    directFor,
    client(workload, clientOptions = {}) {
      const ssl = harness.ssl(workload);
      const db = new Firestore({
        projectId: clientOptions.projectId ?? options.project,
        ...meshgateClientSettings(gaxGrpc, { host: '127.0.0.1', port }, ssl),
        ...(clientOptions.databaseId === undefined ? {} : { databaseId: clientOptions.databaseId }),
        ...(clientOptions.customHeaders === undefined ? {} : { customHeaders: clientOptions.customHeaders }),
      } as never);
      closers.push(() => db.terminate());
      return db;
    },
    reset: () => emulator.reset(options.project),
    async reseed(documents) {
      await emulator.reset(options.project);
      const batch = direct.batch();
      for (const [path, data] of Object.entries(documents)) batch.set(direct.doc(path), data);
      await batch.commit();
    },
    async mark() {
      return (await rpcEvents()).length;
    },
    async rpcSince(mark, atLeast = 0) {
      const deadline = Date.now() + 5000;
      for (;;) {
        const events = (await rpcEvents()).slice(mark);
        if (events.length >= atLeast || Date.now() > deadline) return events;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    onStop(close) {
      closers.push(close);
    },
    async stop() {
      for (const close of closers.reverse()) {
        try {
          await close();
        } catch {
          // best effort: the emulator and meshgate go next either way
        }
      }
      try {
        await harness.stop();
      } finally {
        if (ownsEmulator) await emulator.stop();
      }
    },
  };
}

/**
 * The rpc events since `mark` for `method`, waiting a little for calls that end after the
 * client saw their result (a stream the client cancels, a listener it removes).
 */
export async function waitForRpc(fixture: FirestoreFixture, mark: number, method: string, count = 1, timeoutMs = 5000): Promise<RpcEvent[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const events = (await fixture.rpcSince(mark)).filter((event) => event.method === FS_METHOD(method));
    if (events.length >= count || Date.now() > deadline) return events;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The one rpc event since `mark` for `method`; fails when there is not exactly one. */
export async function onlyRpc(fixture: FirestoreFixture, mark: number, method: string): Promise<RpcEvent> {
  const events = await waitForRpc(fixture, mark, method);
  if (events.length !== 1) {
    const all = (await fixture.rpcSince(mark)).map((e) => `${e.method} ${e.decision} ${e.paths.join(',')}`);
    throw new Error(`expected one ${method} event, got ${events.length}: ${JSON.stringify(all)}`);
  }
  return events[0]!;
}

/** An error as the SDK rejects with it (a grpc ServiceError with code and details). */
export interface GrpcFailure {
  readonly code: number;
  readonly details?: string;
  readonly message: string;
}

export const PERMISSION_DENIED = 7;
export const INVALID_ARGUMENT = 3;
export const UNAUTHENTICATED = 16;

// ---------------------------------------------------------------------------------------
// Raw gRPC: Google's own message types (the protos that ship with @google-cloud/firestore),
// encoded with protobufjs and sent by grpc-js with pass-through serializers, for what the
// SDK cannot be made to send (a write in a read-only transaction, garbage, XFCC).

let protos: protobuf.Root | null = null;

/** google.firestore.v1 as the SDK ships it. */
export function firestoreProtos(): protobuf.Root {
  if (protos === null) {
    const dir = join(dirname(require.resolve('@google-cloud/firestore/package.json')), 'build', 'protos');
    protos = protobuf.Root.fromJSON(JSON.parse(readFileSync(join(dir, 'v1.json'), 'utf8')) as protobuf.INamespace);
  }
  return protos;
}

/** Encodes a google.firestore.v1 message from its JSON-ish form (camelCase fields). */
export function encodeMessage(type: string, value: Record<string, unknown>): Buffer {
  const t = firestoreProtos().lookupType(`google.firestore.v1.${type}`);
  return Buffer.from(t.encode(t.fromObject(value)).finish());
}

export function decodeMessage<T>(type: string, bytes: Buffer): T {
  const t = firestoreProtos().lookupType(`google.firestore.v1.${type}`);
  return t.toObject(t.decode(bytes), { defaults: false, bytes: Buffer as never }) as T;
}

const passthrough = (b: Buffer) => b;
type Unary = (request: Buffer, metadata: grpc.Metadata, callback: (error: grpc.ServiceError | null, response?: Buffer) => void) => void;
type ServerStream = (request: Buffer, metadata: grpc.Metadata) => grpc.ClientReadableStream<Buffer>;
type Bidi = (metadata: grpc.Metadata) => grpc.ClientDuplexStream<Buffer, Buffer>;

const RawClient = grpc.makeGenericClientConstructor(
  Object.fromEntries(
    (
      [
        ['GetDocument', false, false],
        ['ListDocuments', false, false],
        ['BeginTransaction', false, false],
        ['Commit', false, false],
        ['Rollback', false, false],
        ['BatchGetDocuments', false, true],
        ['RunQuery', false, true],
        ['Listen', true, true],
      ] as const
    ).map(([name, requestStream, responseStream]) => [
      name,
      {
        path: `/google.firestore.v1.Firestore/${name}`,
        requestStream,
        responseStream,
        requestSerialize: passthrough,
        requestDeserialize: passthrough,
        responseSerialize: passthrough,
        responseDeserialize: passthrough,
      },
    ]),
  ),
  'RawFirestore',
);

export interface RawFirestore {
  unary(method: 'GetDocument' | 'ListDocuments' | 'BeginTransaction' | 'Commit' | 'Rollback', body: Buffer, metadata?: grpc.Metadata): Promise<Buffer>;
  serverStream(method: 'BatchGetDocuments' | 'RunQuery', body: Buffer, metadata?: grpc.Metadata): Promise<Buffer[]>;
  /**
   * Opens a Listen stream, sends `body`, and collects what comes back for `forMs`; then
   * cancels. `error` is the status the stream ended with before that, if it did.
   */
  listen(body: Buffer, metadata: grpc.Metadata, forMs: number): Promise<{ messages: Buffer[]; error: grpc.ServiceError | null }>;
  close(): void;
}

/** A grpc-js client for google.firestore.v1.Firestore that sends and receives raw bytes. */
export function rawFirestore(address: string, credentials: grpc.ChannelCredentials): RawFirestore {
  // An IP as TLS server name is against RFC 6066 (Node warns, DEP0123); meshgate's test certificate names localhost.
  const options = isIP(address.replace(/:\d+$/, '')) === 0 ? {} : { 'grpc.ssl_target_name_override': 'localhost' };
  const client = new RawClient(address, credentials, options) as unknown as grpc.Client & Record<string, Unary | ServerStream | Bidi>;
  return {
    unary(method, body, metadata = new grpc.Metadata()) {
      return new Promise((resolve, reject) => {
        (client[method] as Unary).call(client, body, metadata, (error, response) => (error !== null ? reject(error) : resolve(response!)));
      });
    },
    serverStream(method, body, metadata = new grpc.Metadata()) {
      return new Promise((resolve, reject) => {
        const out: Buffer[] = [];
        const call = (client[method] as ServerStream).call(client, body, metadata);
        call.on('data', (message: Buffer) => out.push(message));
        call.on('error', reject);
        call.on('end', () => resolve(out));
      });
    },
    listen(body, metadata, forMs) {
      return new Promise((resolve) => {
        const messages: Buffer[] = [];
        let error: grpc.ServiceError | null = null;
        const call = (client['Listen'] as Bidi).call(client, metadata);
        const timer = setTimeout(() => {
          call.cancel();
          resolve({ messages, error });
        }, forMs);
        call.on('data', (message: Buffer) => messages.push(message));
        call.on('error', (e: grpc.ServiceError) => {
          if (e.code === grpc.status.CANCELLED) return;
          error = e;
          clearTimeout(timer);
          resolve({ messages, error });
        });
        call.write(body);
      });
    },
    close: () => client.close(),
  };
}

export { grpc };

// ---------------------------------------------------------------------------------------
// The policy the suites share. Rule ids are `<policy>/<id>`.

export const FIRESTORE_WORKLOADS = {
  orders: spiffe('ns/shop/sa/orders'),
  analytics: spiffe('ns/shop/sa/analytics'),
  reporter: spiffe('ns/shop/sa/reporter'),
  auditor: spiffe('ns/shop/sa/auditor'),
  staging: spiffe('ns/staging/sa/orders'),
  stranger: spiffe('ns/shop/sa/stranger'),
} as const;

/**
 * - orders (and staging's orders, which the DENY below then stops): read and write orders
 *   documents, their items, and accounts; admin (listing collection ids) on orders documents;
 * - analytics: read only, everything under analytics;
 * - reporter: read everything under orders, at any depth (collection groups under an order);
 * - auditor: read and admin everywhere (`**`), so collection groups at the root;
 * - DENY every caller in namespace staging, and every caller on accounts/secret-*.
 */
export const FIRESTORE_POLICY = `
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: fs-allow }
spec:
  action: ALLOW
  rules:
    - id: orders-rw
      from: [{ source: { principals: ["${principal('ns/shop/sa/orders')}", "${principal('ns/staging/sa/orders')}"] } }]
      to: [{ firestore: { collections: ["orders/*", "orders/*/items/*", "accounts/*"], operations: [read, write] } }]
    - id: orders-admin
      from: [{ source: { principals: ["${principal('ns/shop/sa/orders')}"] } }]
      to: [{ firestore: { collections: ["orders/*"], operations: [admin] } }]
    - id: analytics-read
      from: [{ source: { principals: ["${principal('ns/shop/sa/analytics')}"] } }]
      to: [{ firestore: { collections: ["analytics/**"], operations: [read] } }]
    - id: reporter-read
      from: [{ source: { principals: ["${principal('ns/shop/sa/reporter')}"] } }]
      to: [{ firestore: { collections: ["orders/**"], operations: [read] } }]
    - id: auditor
      from: [{ source: { principals: ["${principal('ns/shop/sa/auditor')}"] } }]
      to: [{ firestore: { collections: ["**"], operations: [read, admin] } }]
---
apiVersion: meshgate.dev/v1alpha1
kind: AccessPolicy
metadata: { name: fs-deny }
spec:
  action: DENY
  rules:
    - id: staging
      from: [{ source: { namespaces: ["staging"] } }]
    - id: secrets
      to: [{ firestore: { collections: ["accounts/secret-*"] } }]
`;

export const RULE = {
  ordersRw: 'fs-allow/orders-rw',
  ordersAdmin: 'fs-allow/orders-admin',
  analytics: 'fs-allow/analytics-read',
  reporter: 'fs-allow/reporter-read',
  auditor: 'fs-allow/auditor',
  denyStaging: 'fs-deny/staging',
  denySecrets: 'fs-deny/secrets',
} as const;
