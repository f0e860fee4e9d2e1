// Load generator for bench/api-load.ts, run as its own process so that the API under test and the
// client do not share an event loop. Reads a JSON config on argv[2], prints a JSON result.
//   {mode: 'autocannon' | 'pollers', url, project, token, clients: [ids], connections, duration, overallRate?}
// Each request is one scheduler poll: GET /v2/{project}/jobs?limit=10&offset=0 with Freezer's filter
// body {"match": [{"client_id": <a node>}], "match_not": [{"status": "completed"}]}.
//  - autocannon: `connections` connections, each sending as soon as its last answer came (saturation),
//    or, with overallRate, autocannon's per-second limiter (every connection's budget refills at the
//    same instant: all nodes poll together, a thundering herd); nodes round-robin.
//  - pollers: `connections` nodes, each with its own keep-alive connection, polling every 1000 ms from
//    a random phase (spread in time, as real schedulers are); latency measured per request.
import autocannon from 'autocannon';
import http from 'node:http';

const cfg = JSON.parse(process.argv[2]);
const path = `/v2/${cfg.project}/jobs?limit=10&offset=0`;
const headers = { 'x-auth-token': cfg.token, 'content-type': 'application/json', accept: 'application/json' };
const body = (client) => JSON.stringify({ match: [{ client_id: client }], match_not: [{ status: 'completed' }] });

async function withAutocannon() {
  let next = 0;
  const r = await autocannon({
    url: cfg.url, connections: cfg.connections, duration: cfg.duration,
    ...(cfg.overallRate ? { overallRate: cfg.overallRate } : {}),
    requests: [{ setupRequest: (req) => ({ ...req, method: 'GET', path, headers, body: body(cfg.clients[next++ % cfg.clients.length]) }) }],
  });
  return { rps: r.requests.average, p50: r.latency.p50, p99: r.latency.p99, max: r.latency.max, errors: r.errors + r.timeouts + r.non2xx };
}

async function withPollers() {
  const agent = new http.Agent({ keepAlive: true, maxSockets: cfg.connections });
  const u = new URL(cfg.url);
  const latencies = [];
  let errors = 0;
  const end = Date.now() + cfg.duration * 1000;
  const poll = (client) => new Promise((resolve) => {
    const t = process.hrtime.bigint();
    const payload = body(client);
    const req = http.request({ host: u.hostname, port: u.port, path, method: 'GET', agent, headers: { ...headers, 'content-length': Buffer.byteLength(payload) } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode !== 200) errors++;
        latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
        resolve();
      });
    });
    req.on('error', () => { errors++; resolve(); });
    req.end(payload);
  });
  const node = async (i) => {
    const client = cfg.clients[i % cfg.clients.length];
    let at = Date.now() + Math.random() * 1000;
    while (at < end) {
      await new Promise((r) => setTimeout(r, Math.max(0, at - Date.now())));
      await poll(client);
      at += 1000;
    }
  };
  const started = Date.now();
  await Promise.all(Array.from({ length: cfg.connections }, (_, i) => node(i)));
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const q = (p) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? 0;
  const round = (x) => Math.round(x * 10) / 10;
  return { rps: latencies.length / ((Date.now() - started) / 1000), p50: round(q(0.5)), p99: round(q(0.99)), max: round(latencies.at(-1) ?? 0), errors };
}

process.stdout.write(JSON.stringify(cfg.mode === 'pollers' ? await withPollers() : await withAutocannon()));
