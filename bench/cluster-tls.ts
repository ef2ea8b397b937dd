/**
 * The cluster benchmark's raw TLS floors: node:tls with the cluster's settings (TLS_OPTIONS,
 * PSK_IDENTITY, clusterKey of the same secret, setNoDelay) between this process and the TLS peer
 * process (bench/cluster-tls-peer.ts) — what any message between two nodes pays at least, without
 * popcorn's framing, relays and rings.
 */

import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import * as tls from 'node:tls';
import { clusterKey, PSK_IDENTITY, TLS_OPTIONS } from '../src/node/cluster.js';
import { Child, type Resources } from '../test/child.js';

const PEER = fileURLToPath(new URL('./cluster-tls-peer.js', import.meta.url));
const MESSAGE_BYTES = 64;
/** Writes of a raw TLS transfer: as big as the pieces a migrating memory travels in (src/services/memory-transfer.ts). */
const PIECE_BYTES = 192 * 1024;

/**
 * Raw TLS to the TLS peer process. `ping()` sends MESSAGE_BYTES on the echo connection and
 * resolves with the µs until all came back; `transfer(bytes)` writes `bytes` on the sink
 * connection in PIECE_BYTES writes and resolves with the ms until the peer acknowledged all of
 * them.
 */
export class TlsProbe {
  private readonly waits = new Map<tls.TLSSocket, { need: number; got: number; resolve: () => void; reject: (error: Error) => void }>();
  private readonly message = randomBytes(MESSAGE_BYTES);
  private data = Buffer.alloc(0);

  private constructor(private readonly echo: tls.TLSSocket, private readonly sink: tls.TLSSocket) {
    for (const socket of [echo, sink]) {
      socket.on('data', (chunk: Buffer) => {
        const w = this.waits.get(socket);
        if (w === undefined) return;
        w.got += chunk.length;
        if (w.got < w.need) return;
        this.waits.delete(socket);
        w.resolve();
      });
      const fail = (error: Error): void => {
        this.waits.get(socket)?.reject(error);
        this.waits.delete(socket);
      };
      socket.on('error', fail);
      socket.on('close', () => fail(new Error('cluster bench: a TLS probe connection closed')));
    }
  }

  /** Start the peer process (held by `res`) and open both connections. */
  static async open(res: Resources, secret: Buffer, timeoutMs: number): Promise<TlsProbe> {
    const key = clusterKey(secret);
    const peer = res.hold(new Child({ name: 'the TLS peer', script: PEER, args: [], env: { POPCORN_TLS_PEER_KEY: key.toString('hex') }, dir: res.dir }));
    const listening = /^(\d+)$/m;
    await peer.waitFor(listening, timeoutMs);
    const port = Number(listening.exec(peer.output)?.[1]);
    const connect = (mode: string): Promise<tls.TLSSocket> =>
      new Promise((resolve, reject) => {
        const socket = tls.connect({
          ...TLS_OPTIONS, host: '127.0.0.1', port,
          pskCallback: () => ({ psk: key, identity: PSK_IDENTITY }),
          checkServerIdentity: () => undefined,
        });
        socket.once('error', reject);
        socket.once('secureConnect', () => {
          socket.off('error', reject);
          socket.setNoDelay(true);
          socket.write(mode);
          resolve(socket);
        });
      });
    return new TlsProbe(await connect('e'), await connect('s'));
  }

  private wait(socket: tls.TLSSocket, need: number): Promise<void> {
    return new Promise((resolve, reject) => this.waits.set(socket, { need, got: 0, resolve, reject }));
  }

  async ping(): Promise<number> {
    const t = performance.now();
    const back = this.wait(this.echo, MESSAGE_BYTES);
    this.echo.write(this.message);
    await back;
    return (performance.now() - t) * 1000;
  }

  async transfer(bytes: number): Promise<number> {
    if (this.data.length < bytes) this.data = randomBytes(bytes);
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes, 0);
    const t = performance.now();
    const acked = this.wait(this.sink, 1);
    this.sink.write(length);
    for (let offset = 0; offset < bytes; offset += PIECE_BYTES) this.sink.write(this.data.subarray(offset, Math.min(offset + PIECE_BYTES, bytes)));
    await acked;
    return performance.now() - t;
  }

  close(): void {
    this.echo.destroy();
    this.sink.destroy();
  }
}
