// node:test reporter that sends the runner's events as JSON lines to run-tests.mjs over
// the pipe it passes as fd 3, for it to count and to watch for a file whose tests are done
// but whose process does not end. (A pipe fd cannot be named as a reporter destination:
// /dev/fd/3 does not open for a socket, so this writes to it itself.) Only the fields the
// runner reads are kept: errors can hold sockets and cycles.
import { Socket } from 'node:net';

const pipe = new Socket({ fd: 3, readable: false, writable: true });
// Pending writes still finish; the pipe alone must not keep a finished test process alive.
pipe.unref();

export default async function* testEvents(source) {
  for await (const event of source) {
    const data = event.data ?? {};
    const error = data.details?.error;
    pipe.write(
      JSON.stringify({
        type: event.type,
        name: data.name,
        nesting: data.nesting,
        suite: data.details?.type === 'suite',
        skip: Boolean(data.skip) || Boolean(data.todo),
        failureType: error?.failureType,
        message: error === undefined ? undefined : String(error.cause?.message ?? error.message ?? '').split('\n')[0],
      }) + '\n',
    );
  }
  yield '';
}
