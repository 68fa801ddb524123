/**
 * The plain-HTTP metrics listener (`metrics.listen`): what a Prometheus in the pod, or the
 * kubelet's probes, reach without a client certificate. It serves /metrics, /healthz and
 * /readyz and nothing else, so it holds nothing a caller could use.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mgError } from '../../errors/index.ts';
import { sendError } from '../../transport/http/index.ts';
import type { ProbeRoute } from './probes.ts';

const REQUEST_TIMEOUT_MS = 15_000;
const KEEP_ALIVE_TIMEOUT_MS = 5_000;

export interface ProbeListener {
  readonly host: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Routes GET (and HEAD) to `routes`; rejects with MG_CONFIG_INVALID when it cannot listen. */
export async function listenProbes(host: string, port: number, routes: Readonly<Record<string, ProbeRoute>>, onError: (error: unknown, path: string) => void): Promise<ProbeListener> {
  const served = Object.keys(routes).join(', ');
  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0] ?? '';
    const route = Object.hasOwn(routes, path) ? routes[path] : undefined;
    if (route === undefined) {
      sendError(res, 404, { code: 'MG_USAGE', message: `no such route; this listener serves GET ${served}` });
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      sendError(res, 405, { code: 'MG_USAGE', message: `use GET ${path}` }, { allow: 'GET' });
      return;
    }
    route(req, res).catch((error: unknown) => {
      onError(error, path);
      sendError(res, 500, { code: 'MG_INTERNAL', message: 'meshgate could not answer this; its log says why' });
    });
  };
  const server = createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: REQUEST_TIMEOUT_MS, keepAliveTimeout: KEEP_ALIVE_TIMEOUT_MS }, handle);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (error: NodeJS.ErrnoException) =>
      reject(mgError('MG_CONFIG_INVALID', `the metrics listener cannot listen on ${host}:${port} (${error.code ?? error.message}); choose another metrics.listen`, error)),
    );
    server.listen(port, host, () => resolve());
  });
  return {
    host,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
