/**
 * The node's web view (express, ws): the dashboard page, /metrics, and a WebSocket that pushes a
 * snapshot a few times a second to whoever watches. With nobody connected, no timer runs and the
 * kernels are asked nothing.
 *
 * Access, as Jupyter does it: the server listens on loopback unless told otherwise, and every
 * request needs the node's token — `?token=T` (the URL `popcorn dashboard` prints), a
 * `Authorization: Bearer T` header (Prometheus's bearer_token), or the cookie the page gets on its
 * first visit with `?token=`. No token is 401, a wrong one 403.
 */

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type NextFunction, type Request, type Response } from 'express';
import { WebSocketServer, type WebSocket } from 'ws';
import type { PopcornNode } from '../node.js';
import { publicView, type Observer } from '../observer.js';
import { Metrics } from '../metrics.js';
import { parseControlRequest, type ControlRequest } from '../control-requests.js';

/** Snapshots pushed per second to connected pages. */
const PUSH_HZ = 2;
const COOKIE = 'popcorn_token';

/** The page's own files, beside this module's source (not compiled: served as they are). */
const PUBLIC = join(dirname(fileURLToPath(import.meta.url)), '../../../../src/node/dashboard/public');
const UPLOT = dirname(createRequire(import.meta.url).resolve('uplot'));

export interface DashboardOptions {
  host: string;
  /** 0: any free port. */
  port: number;
  log: (text: string) => void;
}

export class Dashboard {
  readonly token = randomBytes(24).toString('hex');
  private readonly metrics: Metrics;
  private readonly sockets = new Set<WebSocket>();
  private timer: NodeJS.Timeout | undefined;
  private pushing = false;

  private constructor(private readonly node: PopcornNode, private readonly observer: Observer, private readonly server: Server, private readonly wss: WebSocketServer, private readonly log: (text: string) => void) {
    this.metrics = new Metrics(observer);
  }

  static async start(node: PopcornNode, observer: Observer, options: DashboardOptions): Promise<Dashboard> {
    const app = express();
    const server = createServer(app);
    const wss = new WebSocketServer({ noServer: true });
    const dashboard = new Dashboard(node, observer, server, wss, options.log);
    dashboard.routes(app);
    server.on('upgrade', (request, socket, head) => {
      const refused = dashboard.refusal(request);
      if (refused !== 0) {
        socket.end(`HTTP/1.1 ${refused} ${refused === 401 ? 'Unauthorized' : 'Forbidden'}\r\n\r\n`);
        return;
      }
      wss.handleUpgrade(request, socket, head, (ws) => dashboard.watch(ws));
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => resolve());
    });
    return dashboard;
  }

  /** The URL to open, token included. */
  get url(): string {
    const address = this.server.address();
    if (address === null || typeof address === 'string') throw new Error('the dashboard is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}/?token=${this.token}`;
  }

  close(): Promise<void> {
    clearInterval(this.timer);
    for (const ws of this.sockets) ws.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private routes(app: express.Express): void {
    app.disable('x-powered-by');
    app.use((req, res, next) => this.guard(req, res, next));
    app.use(express.json({ limit: '4kb' }));
    app.get('/metrics', (_req, res, next) => {
      this.metrics.text().then((text) => res.type(this.metrics.contentType).send(text), next);
    });
    app.get('/api/snapshot', (_req, res, next) => {
      this.observer.sample().then((snap) => res.json(publicView(snap)), next);
    });
    app.post('/api/kill', (req, res) => void this.act(res, () => this.kill(req.body)));
    app.post('/api/migrate', (req, res) => void this.act(res, () => this.migrate(req.body)));
    app.use('/vendor', express.static(UPLOT, { index: false }));
    app.use('/', express.static(PUBLIC, { index: 'index.html' }));
  }

  /** 0 when the request carries the token; else the status to refuse it with. */
  private refusal(request: IncomingMessage): number {
    const url = new URL(request.url ?? '/', 'http://x');
    const bearer = /^Bearer (.+)$/.exec(request.headers.authorization ?? '')?.[1];
    const cookie = (request.headers.cookie ?? '').split(/; */).find((c) => c.startsWith(`${COOKIE}=`))?.slice(COOKIE.length + 1);
    const given = url.searchParams.get('token') ?? bearer ?? cookie;
    if (given === undefined || given === '') return 401;
    const a = Buffer.from(given);
    const b = Buffer.from(this.token);
    return a.length === b.length && timingSafeEqual(a, b) ? 0 : 403;
  }

  private guard(req: Request, res: Response, next: NextFunction): void {
    const refused = this.refusal(req);
    if (refused !== 0) {
      res.status(refused).type('text').send(refused === 401 ? 'a token is needed: open the URL `popcorn dashboard` prints\n' : 'wrong token\n');
      return;
    }
    // The page's own requests (scripts, the socket, the buttons) then carry the cookie; Strict
    // keeps other sites' pages from using it.
    if (typeof req.query.token === 'string') res.cookie(COOKIE, this.token, { httpOnly: true, sameSite: 'strict' });
    next();
  }

  /** The page's buttons send the control protocol's kill and migrate fields, checked the same way. */
  private async kill(body: unknown): Promise<void> {
    const { pid, signal } = parseControlRequest({ ...asFields(body), op: 'kill' }) as Extract<ControlRequest, { op: 'kill' }>;
    if (!(await this.node.kill(pid, signal))) throw new Error(`no process with pid ${pid}`);
  }

  private async migrate(body: unknown): Promise<void> {
    const { pid, kernel } = parseControlRequest({ ...asFields(body), op: 'migrate' }) as Extract<ControlRequest, { op: 'migrate' }>;
    await this.node.move(pid, kernel);
  }

  private async act(res: Response, action: () => Promise<unknown>): Promise<void> {
    try {
      await action();
      res.json({ ok: true });
    } catch (error) {
      res.status(400).json({ ok: false, error: error instanceof Error ? error.message : String(error) });
    }
  }

  /** A page connected: push snapshots while any page is. */
  private watch(ws: WebSocket): void {
    this.sockets.add(ws);
    ws.on('close', () => {
      this.sockets.delete(ws);
      if (this.sockets.size === 0) {
        clearInterval(this.timer);
        this.timer = undefined;
      }
    });
    ws.on('error', () => ws.terminate());
    this.timer ??= setInterval(() => void this.push(), 1000 / PUSH_HZ);
    void this.push();
  }

  private async push(): Promise<void> {
    if (this.pushing) return; // a slow sample: skip a beat rather than pile up
    this.pushing = true;
    try {
      const text = JSON.stringify(publicView(await this.observer.sample()));
      for (const ws of this.sockets) ws.send(text);
    } catch (error) {
      this.log(`dashboard: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      this.pushing = false;
    }
  }
}

/** A request body's fields (an empty set for anything that is not a JSON object). */
function asFields(body: unknown): object {
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? body : {};
}
