/** Accepts MySQL-protocol clients and runs one MysqlSession per connection. */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { mgError } from '../../errors/index.ts';
import type { CompiledPolicy } from '../../policy/index.ts';
import { SHUTDOWN_MESSAGE } from '../engine.ts';
import type { MysqlEngineContext } from './context.ts';
import { SessionDirectory } from './directory.ts';
import { LoginStages } from './login-stages.ts';
import { MysqlSession } from './session.ts';

export interface ListenOptions {
  readonly host: string;
  readonly port: number;
}

export class MysqlListener {
  private readonly server: Server;
  private readonly sessions = new Set<MysqlSession>();
  private readonly stages: LoginStages;
  /** Told once the last session has recorded its end (shutdown waits for it). */
  private whenEmpty: (() => void) | null = null;
  private emptied: Promise<void> | null = null;
  /** The listening socket's close, once asked for. */
  private stopped: Promise<void> | null = null;

  constructor(private readonly ctx: MysqlEngineContext) {
    // One directory per listener: KILL names a connection id this listener handed out.
    this.stages = new LoginStages(ctx, new SessionDirectory());
    this.server = createServer({ noDelay: true }, (socket) => this.accept(socket));
  }

  get activeSessions(): number {
    return this.sessions.size;
  }

  listen(options: ListenOptions): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(options.port, options.host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Takes no new connection; open sessions go on. Resolves once the last of them has recorded its end. */
  stopAccepting(): Promise<void> {
    if (this.stopped === null) this.stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
    return this.empty();
  }

  /**
   * Stops accepting and ends every open session: each finishes the answers MariaDB still owes
   * it (within listener.timeouts.drain), hears MG_SHUTTING_DOWN when it waits for nothing, and
   * records its end before this resolves.
   */
  async close(): Promise<void> {
    const ended = this.stopAccepting();
    const farewell = mgError('MG_SHUTTING_DOWN', SHUTDOWN_MESSAGE);
    for (const session of [...this.sessions]) session.close('meshgate shut down', farewell);
    await Promise.all([ended, this.stopped]);
  }

  private empty(): Promise<void> {
    if (this.sessions.size === 0) return Promise.resolve();
    this.emptied ??= new Promise<void>((resolve) => (this.whenEmpty = resolve));
    return this.emptied;
  }

  /** Judges every open session by a reloaded policy; ends those it no longer allows and says how many. */
  redecide(policy: CompiledPolicy): number {
    let ended = 0;
    for (const session of this.sessions) if (session.redecide(policy)) ended++;
    return ended;
  }

  private accept(socket: Socket): void {
    const session = new MysqlSession(socket, this.ctx, this.stages, randomBytes(8).toString('hex'), () => {
      this.sessions.delete(session);
      if (this.sessions.size === 0 && this.whenEmpty !== null) {
        this.whenEmpty();
        this.whenEmpty = null;
        this.emptied = null;
      }
    });
    this.sessions.add(session);
    session.start();
  }
}
