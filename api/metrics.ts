/**
 * Prometheus metrics, served at GET /metrics (text format 0.0.4) without a token, as Prometheus scrapes.
 * They hold counts and timings only: no project, id or token ever becomes a label (labels are the route
 * pattern, the method and the status), so their number stays bounded and nothing leaks.
 *
 *   floe_api_requests_total{method,route,status}        counter
 *   floe_api_request_duration_seconds{method,route}      histogram (1 ms .. 2.5 s)
 *   floe_api_records{kind}                               gauge, counted at scrape time
 *   plus prom-client's process metrics (CPU, memory, event-loop lag, GC), prefixed floe_api_
 */
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { Db } from './db/client.js';

export class Metrics {
  readonly registry = new Registry();
  #requests: Counter<'method' | 'route' | 'status'>;
  #duration: Histogram<'method' | 'route'>;

  constructor(db: Db) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'floe_api_' });
    this.#requests = new Counter({ name: 'floe_api_requests_total', help: 'HTTP requests answered', labelNames: ['method', 'route', 'status'], registers });
    // buckets: the target is p99 under 50 ms; the finer steps sit below it
    this.#duration = new Histogram({
      name: 'floe_api_request_duration_seconds', help: 'Time from request to response', labelNames: ['method', 'route'], registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    });
    new Gauge({
      name: 'floe_api_records', help: 'Records in the database, all projects', labelNames: ['kind'], registers,
      async collect() {
        const [b, c, j, a, s] = await Promise.all([db.backup.count(), db.client.count(), db.job.count(), db.action.count(), db.session.count()]);
        for (const [kind, n] of [['backups', b], ['clients', c], ['jobs', j], ['actions', a], ['sessions', s]] as const) this.set({ kind }, n);
      },
    });
  }

  /** hook records every answered request. */
  hook(app: FastifyInstance): void {
    app.addHook('onResponse', async (req, reply) => {
      const route = req.routeOptions.url ?? 'unmatched';
      const method = req.method;
      this.#requests.inc({ method, route, status: String(reply.statusCode) });
      this.#duration.observe({ method, route }, reply.elapsedTime / 1000);
    });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
