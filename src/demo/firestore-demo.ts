/**
 * The demo's Firestore part: real @google-cloud/firestore clients, each with its workload's
 * SVID, through meshgate's gRPC listener to an emulator. orders may write `orders`,
 * analytics may only read `analytics`, staging is denied everything.
 */
import { createRequire } from 'node:module';
import { mgError } from '../errors/index.ts';
import { emulatorClientSettings, meshgateClientSettings } from './firestore-sdk.ts';

export const DEMO_FIRESTORE_PROJECT = 'meshgate-demo';

export interface FirestoreOutcome {
  readonly who: string;
  readonly what: string;
  readonly allowed: boolean;
  readonly detail: string;
}

interface Sdk {
  Firestore: new (settings: Record<string, unknown>) => FirestoreClient;
}
interface FirestoreClient {
  doc(path: string): { set(data: object): Promise<unknown>; get(): Promise<{ exists: boolean; data(): unknown }> };
  collection(path: string): { where(f: string, op: string, v: unknown): { get(): Promise<{ size: number }> }; get(): Promise<{ size: number }> };
  terminate(): Promise<void>;
}

function loadSdk(): { sdk: Sdk; grpc: typeof import('@grpc/grpc-js') } {
  const require = createRequire(import.meta.url);
  try {
    // The SDK's own grpc: credentials made by another copy fail its instanceof checks.
    return { sdk: require('@google-cloud/firestore') as Sdk, grpc: (require('google-gax') as { grpc: typeof import('@grpc/grpc-js') }).grpc };
  } catch (error) {
    throw mgError('MG_CONFIG_INVALID', 'the Firestore part of the demo needs the @google-cloud/firestore package: run `npm ci` in the meshgate checkout (it is a development dependency)', error);
  }
}

export async function runFirestoreDemo(options: {
  readonly port: number;
  readonly emulator: { readonly host: string; readonly port: number };
  readonly certs: Readonly<Record<string, { cert: Buffer; key: Buffer; ca: Buffer }>>;
}): Promise<FirestoreOutcome[]> {
  const { sdk, grpc } = loadSdk();
  const through = (workload: string) =>
    new sdk.Firestore({ projectId: DEMO_FIRESTORE_PROJECT, ...meshgateClientSettings(grpc, { host: '127.0.0.1', port: options.port }, options.certs[workload]!) });
  // Seeding goes straight to the emulator, as an administrator would.
  const direct = new sdk.Firestore({ projectId: DEMO_FIRESTORE_PROJECT, ...emulatorClientSettings(options.emulator) });
  await direct.doc('analytics/2026-11-24').set({ orders: 41, revenue: 1234.5 });
  await direct.doc('analytics/2026-11-23').set({ orders: 37, revenue: 1101.0 });
  await direct.terminate();

  const clients = { orders: through('orders'), analytics: through('analytics'), staging: through('staging') };
  const outcomes: FirestoreOutcome[] = [];
  const attempt = async (who: keyof typeof clients, what: string, run: (db: FirestoreClient) => Promise<string>) => {
    try {
      outcomes.push({ who, what, allowed: true, detail: await run(clients[who]) });
    } catch (error) {
      const e = error as { code?: number; details?: string; message: string };
      outcomes.push({ who, what, allowed: false, detail: e.details ?? e.message });
    }
  };
  try {
    await attempt('orders', "set orders/o-1001 {item: 'espresso beans', qty: 2}", async (db) => {
      await db.doc('orders/o-1001').set({ item: 'espresso beans', qty: 2 });
      return 'written';
    });
    await attempt('orders', 'get orders/o-1001', async (db) => JSON.stringify((await db.doc('orders/o-1001').get()).data()));
    await attempt('orders', 'get analytics/2026-11-24', async (db) => JSON.stringify((await db.doc('analytics/2026-11-24').get()).data()));
    await attempt('analytics', "query analytics where orders > 30", async (db) => `${(await db.collection('analytics').where('orders', '>', 30).get()).size} document(s)`);
    await attempt('analytics', 'set analytics/2026-11-24 {orders: 0}', async (db) => {
      await db.doc('analytics/2026-11-24').set({ orders: 0 });
      return 'written';
    });
    await attempt('analytics', 'get orders/o-1001', async (db) => JSON.stringify((await db.doc('orders/o-1001').get()).data()));
    await attempt('staging', 'get orders/o-1001', async (db) => JSON.stringify((await db.doc('orders/o-1001').get()).data()));
  } finally {
    await Promise.all(Object.values(clients).map((db) => db.terminate()));
  }
  return outcomes;
}

/** Which outcomes the demo's policy must produce, in order. */
export const EXPECTED_FIRESTORE = [true, true, false, true, false, false, false];
