/**
 * What meshgate tells clients about "the server" before it knows who they are: the
 * upstream's own version string, charset and capabilities, learned once by reading its
 * greeting. Drivers branch on the version (MariaDB vs MySQL features), so mirroring it
 * keeps them on the same code paths they would take connecting directly.
 */
import * as net from 'node:net';
import { mgError } from '../../errors/index.ts';
import { Header } from './codec/constants.ts';
import { decodeErr } from './codec/generic.ts';
import { PacketFramer } from './codec/framer.ts';
import { decodeGreeting, type Greeting } from './codec/handshake.ts';
import type { UpstreamTarget } from './upstream.ts';

export type ServerProfile = Pick<Greeting, 'serverVersion' | 'capabilities' | 'mariadbCapabilities' | 'charset'>;

export function probeServerProfile(target: UpstreamTarget): Promise<ServerProfile> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: target.host, port: target.port });
    const framer = new PacketFramer(64 * 1024);
    const done = (error: Error | null, profile?: ServerProfile) => {
      clearTimeout(timer);
      socket.destroy();
      if (error !== null) reject(error);
      else resolve(profile!);
    };
    const timer = setTimeout(
      () => done(mgError('MG_UPSTREAM_UNAVAILABLE', `MariaDB at ${target.host}:${target.port} sent no greeting within ${target.connectTimeoutMs} ms`)),
      target.connectTimeoutMs,
    );
    socket.on('data', (chunk) => {
      try {
        const [frame] = framer.push(chunk);
        if (frame === undefined) return;
        if (frame.payload[0] === Header.ERR) {
          done(mgError('MG_UPSTREAM_UNAVAILABLE', `MariaDB at ${target.host}:${target.port} refused meshgate: ${decodeErr(frame.payload).message}`));
          return;
        }
        const g = decodeGreeting(frame.payload);
        done(null, { serverVersion: g.serverVersion, capabilities: g.capabilities, mariadbCapabilities: g.mariadbCapabilities, charset: g.charset });
      } catch (error) {
        done(error as Error);
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) =>
      done(
        mgError(
          'MG_UPSTREAM_UNAVAILABLE',
          `cannot reach MariaDB at ${target.host}:${target.port} (${error.code ?? error.message}); start it or fix upstream.host/port in the config`,
          error,
        ),
      ),
    );
  });
}
