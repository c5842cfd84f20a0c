import type { AddressInfo } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import dynalite from 'dynalite';

/**
 * dynalite on a thread of its own (local/dynalite.ts `thread: 'worker'`): the emulator's LevelDB work no
 * longer shares the event loop with the handlers, the site programs and the simulator that call it.
 * Posts `{ port }` once listening, or `{ error }`; closes on 'stop' and posts 'stopped'.
 */
const options = (workerData ?? {}) as { readonly host?: string };
const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
server.once('error', (error: Error) => parentPort?.postMessage({ error: error.message }));
server.listen(0, options.host ?? '127.0.0.1', () => {
  parentPort?.postMessage({ port: (server.address() as AddressInfo).port });
});
parentPort?.on('message', (message: unknown) => {
  if (message !== 'stop') return;
  server.closeAllConnections();
  server.close(() => {
    parentPort?.postMessage('stopped');
    parentPort?.close();
  });
});
