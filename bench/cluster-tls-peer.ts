/**
 * The TLS peer of the cluster benchmark's raw TLS floors (bench/cluster-tls.ts starts it): a
 * process of its own, listening on 127.0.0.1 (port 0) with the cluster's TLS settings and the
 * key in $POPCORN_TLS_PEER_KEY (hex), that prints its port. A connection's first byte says what
 * it is: 'e', every later byte is echoed back; 's', a sink: transfers of a u32 LE length and that
 * many bytes, each acknowledged with one byte once all of it came.
 */

import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import { PSK_IDENTITY, TLS_OPTIONS } from '../src/node/cluster.js';

const keyHex = process.env['POPCORN_TLS_PEER_KEY'];
if (keyHex === undefined) throw new Error('cluster-tls-peer: no $POPCORN_TLS_PEER_KEY (bench/cluster-tls.ts runs this)');
const key = Buffer.from(keyHex, 'hex');

/** The echo: every byte back. */
function echo(socket: tls.TLSSocket): (data: Buffer) => void {
  return (data) => {
    if (data.length > 0) socket.write(data);
  };
}

/** The sink: counts each transfer's bytes and acknowledges it when they have all come. */
function sink(socket: tls.TLSSocket): (data: Buffer) => void {
  let head = Buffer.alloc(0);
  let want = -1;
  let got = 0;
  return (data) => {
    while (data.length > 0) {
      if (want < 0) {
        head = Buffer.concat([head, data]);
        if (head.length < 4) return;
        want = head.readUInt32LE(0);
        data = head.subarray(4);
        head = Buffer.alloc(0);
        got = 0;
      }
      const n = Math.min(data.length, want - got);
      got += n;
      data = data.subarray(n);
      if (got === want) {
        socket.write('k');
        want = -1;
      }
    }
  };
}

const server = tls.createServer({ ...TLS_OPTIONS, pskCallback: (_socket, identity) => (identity === PSK_IDENTITY ? key : null) }, (socket) => {
  socket.setNoDelay(true);
  socket.on('error', () => undefined);
  let serve: ((data: Buffer) => void) | undefined;
  socket.on('data', (data: Buffer) => {
    if (serve === undefined) {
      serve = data[0] === 'e'.charCodeAt(0) ? echo(socket) : sink(socket);
      data = data.subarray(1);
    }
    serve(data);
  });
});
server.listen(0, '127.0.0.1', () => process.stdout.write(`${(server.address() as AddressInfo).port}\n`));
