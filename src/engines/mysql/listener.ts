/** Accepts MySQL-protocol clients and runs one MysqlSession per connection. */
import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { CompiledPolicy } from '../../policy/index.ts';
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
  /** Resolves close() once the last session has recorded its end. */
  private whenEmpty: (() => void) | null = null;

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

  /**
   * Stops accepting and ends every open session: each finishes the answers MariaDB still owes
   * it (within listener.timeouts.drain) and records its end before this resolves.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    const ended = new Promise<void>((resolve) => {
      this.whenEmpty = resolve;
      if (this.sessions.size === 0) resolve();
    });
    for (const session of [...this.sessions]) session.close('meshgate shut down');
    await Promise.all([ended, closed]);
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
      if (this.sessions.size === 0) this.whenEmpty?.();
    });
    this.sessions.add(session);
    session.start();
  }
}
