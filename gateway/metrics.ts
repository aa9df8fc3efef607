import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { ShardEvent } from '../engine/shard-client.ts';

/** Gauges whose values are read when `/metrics` is scraped. */
export interface ScrapedGauges {
  outboxPending(): number;
  shardsServed(): number;
}

/** The server's Prometheus metrics (`GET /metrics`, loopback only). One registry per server. */
export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'paycode_' });
  // The engine and the outbox are made after the metrics; until they say how to count, nothing is.
  let gauges: ScrapedGauges = { outboxPending: () => 0, shardsServed: () => 0 };
  return {
    registry,
    /** Where the gauges read at each scrape take their values. */
    readAtScrape(read: ScrapedGauges): void {
      gauges = read;
    },
    httpRequests: new Counter({
      name: 'paycode_http_requests_total',
      help: 'HTTP requests answered, by route and HTTP status.',
      labelNames: ['route', 'code'] as const,
      registers: [registry],
    }),
    httpLatency: new Histogram({
      name: 'paycode_http_request_duration_seconds',
      help: 'Time from an HTTP request to its answer, by route.',
      labelNames: ['route'] as const,
      buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    posRequests: new Counter({
      name: 'paycode_pos_requests_total',
      help: 'POS requests answered, by type and status.',
      labelNames: ['type', 'status'] as const,
      registers: [registry],
    }),
    posLatency: new Histogram({
      name: 'paycode_pos_request_duration_seconds',
      help: 'Time from a POS request to its durable answer.',
      labelNames: ['type'] as const,
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5],
      registers: [registry],
    }),
    sockets: new Gauge({
      name: 'paycode_websockets_open',
      help: 'Open WebSockets, by endpoint.',
      labelNames: ['endpoint'] as const,
      registers: [registry],
    }),
    handshakeFailures: new Counter({
      name: 'paycode_pos_handshake_failures_total',
      help: 'POS handshakes refused.',
      registers: [registry],
    }),
    codeAttemptsThrottled: new Counter({
      name: 'paycode_code_attempts_throttled_total',
      help: 'Code attempts refused because a merchant or all merchants had too many failed codes.',
      registers: [registry],
    }),
    terminalLocks: new Counter({
      name: 'paycode_terminal_locks_total',
      help: 'Terminals locked after consecutive failed codes.',
      registers: [registry],
    }),
    walletPushes: new Counter({
      name: 'paycode_wallet_pushes_total',
      help: 'Messages pushed to wallet sockets.',
      registers: [registry],
    }),
    smsSent: new Counter({
      name: 'paycode_sms_sent_total',
      help: 'Texts handed to the SMS provider, by result.',
      labelNames: ['result'] as const,
      registers: [registry],
    }),
    smsOutboxPending: new Gauge({
      name: 'paycode_sms_outbox_pending',
      help: 'Texts in the outbox not yet accepted by the SMS provider (a backlog, or texts waiting for a retry).',
      registers: [registry],
      collect() {
        this.set(gauges.outboxPending());
      },
    }),
    shardsServed: new Gauge({
      name: 'paycode_shards_served',
      help: 'Shards this node serves now (in a cluster: those whose lease it holds; alone: every shard that serves).',
      registers: [registry],
      collect() {
        this.set(gauges.shardsServed());
      },
    }),
    smsReceipts: new Counter({
      name: 'paycode_sms_delivery_receipts_total',
      help: 'SMPP delivery receipts, by final state.',
      labelNames: ['state'] as const,
      registers: [registry],
    }),
    smsInbound: new Counter({
      name: 'paycode_sms_inbound_total',
      help: 'Texts received from consumers, by command.',
      labelNames: ['command'] as const,
      registers: [registry],
    }),
    shardDeaths: new Counter({
      name: 'paycode_shard_deaths_total',
      help: 'Shard worker threads that died, by shard.',
      labelNames: ['shard'] as const,
      registers: [registry],
    }),
    shardRestarts: new Counter({
      name: 'paycode_shard_restarts_total',
      help: 'Shard worker threads that replaced a dead one and serve, by shard.',
      labelNames: ['shard'] as const,
      registers: [registry],
    }),
    shardsGivenUp: new Gauge({
      name: 'paycode_shards_given_up',
      help: 'Shards given up after dying too often; their consumers get internal until a restart.',
      registers: [registry],
    }),
    storageRefusals: new Counter({
      name: 'paycode_storage_refusals_total',
      help: 'Times the storage refused a shard commit (a full disk), by shard.',
      labelNames: ['shard'] as const,
      registers: [registry],
    }),
    shardsRefusingWrites: new Gauge({
      name: 'paycode_shards_refusing_writes',
      help: 'Shards whose writes the storage refuses at the moment.',
      registers: [registry],
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;

/** Counts an engine shard event (engine/shard-client.ts); the engine logs it. */
export function countShardEvent(metrics: Metrics, event: ShardEvent): void {
  const shard = String(event.shardIndex);
  if (event.type === 'died') {
    metrics.shardDeaths.inc({ shard });
    if (event.restartInMs === null) metrics.shardsGivenUp.inc();
  } else if (event.type === 'restarted') {
    metrics.shardRestarts.inc({ shard });
  } else if (event.type === 'owned') {
    return;
  } else if (event.writable) {
    metrics.shardsRefusingWrites.dec();
  } else {
    metrics.storageRefusals.inc({ shard });
    metrics.shardsRefusingWrites.inc();
  }
}
