import type { us_listen_socket, us_socket, WebSocket, WebSocketBehavior } from 'uWebSockets.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { LIMITS, type Limits, validateLimits } from '../core/limits.ts';
import { Engine } from '../engine/engine.ts';
import { CodeFailureWindows, type WindowChange } from '../gateway/code-windows.ts';
import type { Revocation } from '../gateway/credentials.ts';
import { type FundingProvider, fundingProvider } from '../gateway/funding/provider.ts';
import { Gifts } from '../gateway/gifts.ts';
import { logRequestsTo, serveBehind, trackRequestsIn } from '../gateway/http.ts';
import { InFlight } from '../gateway/in-flight.ts';
import { countShardEvent, createMetrics } from '../gateway/metrics.ts';
import { posBehavior } from '../gateway/pos.ts';
import { TrustedProxies } from '../gateway/proxies.ts';
import { Registry } from '../gateway/registry.ts';
import { httpRoutes } from '../gateway/routes.ts';
import { handleInbound, ReplyBudget } from '../gateway/sms-channel.ts';
import { SmsGifts } from '../gateway/sms-gifts.ts';
import { uws } from '../gateway/uws.ts';
import { walletBehavior } from '../gateway/wallet-socket.ts';
import { serveWebApps } from '../gateway/web.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { OutboxDelivery } from '../notify/outbox.ts';
import { ConsoleSender, type SmsSender } from '../notify/sender.ts';
import { SmppSender } from '../notify/smpp.ts';
import { receiptText } from '../notify/texts.ts';
import { loadSecrets, type Secrets, secretsPath } from '../persistence/secrets.ts';
import { META, type OutboxRecord, readMeta } from '../persistence/store.ts';
import { CLOSE_CODES } from '../sdk/close-codes.ts';
import { journalRefKey } from '../settlement/reports.ts';
import { Settlements } from '../settlement/settlements.ts';
import { type Config, plainOffLoopback } from './config.ts';
import { createDemo } from './demo.ts';
import { linkLegacyPhoneIds } from './phone-ids.ts';

/**
 * The paycode server: the engine, the registry, the SMS outbox and one uWebSockets.js app serving the
 * HTTP API and the POS and wallet WebSockets. `startServer` resolves once it accepts connections;
 * `close` stops accepting, closes every socket (1001), lets in-flight work finish, and closes the store.
 *
 * @module
 */

export interface ServerOptions {
  config: Config;
  limits?: Partial<Limits>;
  /** Keys from a file or the environment by default; tests pass their own. */
  secrets?: Secrets;
  /** Where start-up lines go (stdout by default). */
  print?: (line: string) => void;
  /** Structured diagnostics and access lines, one JSON object a line (log/logger.ts; stderr by default). */
  logger?: Logger;
  now?: () => number;
  /** Audit the ledger after every commit (tests). */
  auditEachCommit?: boolean;
  /** Called for each shard the engine gives up after it died too often (see EngineOptions.onFatal). */
  onFatal?: (error: Error) => void;
  /** The card processor; by default the one `config.funding` names. */
  funding?: FundingProvider;
}

export interface Server {
  url: string;
  port: number;
  engine: Engine;
  registry: Registry;
  /** Texts sent in `console` SMS mode, newest last; null with SMPP. */
  devInbox: ConsoleSender | null;
  outbox: OutboxDelivery;
  settlements: Settlements;
  /** The HTTP routes as `[method, pattern]`. */
  routes: [string, string][];
  close(): Promise<void>;
}

export async function startServer(options: ServerOptions): Promise<Server> {
  const { config } = options;
  // First: on a runtime without a native uWebSockets.js build nothing else is worth starting.
  const uWS = uws();
  const print = options.print ?? ((line: string) => console.log(line));
  const logger = options.logger ?? createLogger();
  const now = options.now ?? Date.now;
  const limits: Limits = { ...LIMITS, merchantLiveCodesMax: config.merchantLiveCodesMax, ...options.limits };
  const problems = validateLimits(limits);
  if (problems.length > 0) throw new Error(`invalid limits: ${problems.join('; ')}`);
  const secrets =
    options.secrets ??
    loadSecrets(secretsPath(config.dataDir), process.env, { production: config.production });
  const fresh = !existsSync(join(config.dataDir, 'lmdb'));

  const metrics = createMetrics();
  const engine = await Engine.open({
    dataDir: config.dataDir,
    secrets,
    shards: config.shards,
    codeTtlMs: config.codeTtlMs,
    limits,
    now,
    auditEachCommit: options.auditEachCommit,
    onFatal: options.onFatal,
    onShardEvent: (event) => countShardEvent(metrics, event),
    logger,
    ...(config.cluster ? { cluster: config.cluster } : {}),
  });
  const store = engine.store;
  if (config.production && !config.adminToken && readMeta(store, META.operatorTokenHash) === undefined) {
    await engine.close();
    throw new Error('production needs PAYCODE_ADMIN_TOKEN at first start: no token is made up and printed');
  }
  const registry = new Registry(store, secrets.masterKey, limits, now, config.adminToken, {
    retiredMasterKeys: secrets.retiredMasterKeys,
    logger,
    writer: engine.gatewayWriter,
  });
  engine.onSharedWrites((databases) => registry.reread(databases));
  // In a cluster a revocation ends the sessions it concerns on every node, not only this one's.
  let relaying = false;
  registry.credentials.onRevocation((revocation) => {
    if (!relaying) engine.broadcast('revocation', revocation);
  });
  engine.onBroadcast('revocation', (revocation) => {
    relaying = true;
    try {
      registry.credentials.revoked(revocation as Revocation);
    } finally {
      relaying = false;
    }
  });
  await linkLegacyPhoneIds(store, engine, registry.phones, logger);
  const settlements = new Settlements(
    store,
    config.dataDir,
    registry.sealedRecords,
    secrets.masterKey,
    {
      cutoff: { timeZone: config.settlementTimeZone, time: config.settlementCutoff },
      originator: config.ach,
      balanced: config.achBalanced,
      stragglerWindowMs: limits.settlementStragglerWindowMs,
    },
    now,
    print,
    // One node settles a day for the whole cluster (docs/cluster.md).
    config.cluster ? { claim: (businessDate) => engine.claimOnce(`settle.${businessDate}`) } : undefined,
  );

  let outbox: OutboxDelivery | undefined;
  const kick = () => outbox?.kick();
  const replies = new ReplyBudget(limits);
  const smsGifts = new SmsGifts(limits);
  const gifts = new Gifts(engine, registry, limits.giftsPerDayMax, now);
  // The terminals' stored failures of the last day refill the windows, so a restart gives no fresh guesses.
  const codeWindows = new CodeFailureWindows(limits, registry.terminals.failures.recent(now()));
  // In a cluster every node's misses count in every node's windows.
  codeWindows.shareWith((change) => engine.broadcast('code-windows', change));
  engine.onBroadcast('code-windows', (change) => codeWindows.apply(change as WindowChange));
  const inbound = (phone: string, text: string) => {
    handleInbound(
      { engine, registry, codeTtlMs: config.codeTtlMs, replies, gifts: smsGifts, giving: gifts, now },
      phone,
      text,
    ).then(
      (command) => {
        metrics.smsInbound.inc({ command });
        logger.info('sms inbound', { command });
        kick();
      },
      (error: unknown) => logger.error('sms inbound text failed', { err: error }),
    );
  };
  const devInbox = config.sms === 'console' ? new ConsoleSender(500, print) : null;
  const sender: SmsSender =
    devInbox ??
    new SmppSender({
      url: (config.sms as { smppUrl: string }).smppUrl,
      ca:
        config.sms === 'console' || !config.sms.caFile ? undefined : readFileSync(config.sms.caFile, 'utf8'),
      onInbound: inbound,
      onReceipt: (state) => metrics.smsReceipts.inc({ state }),
      logger,
      submitTimeoutMs: limits.smsSubmitTimeoutMs,
    });
  const render = (record: OutboxRecord) =>
    record.message.kind === 'text'
      ? registry.phones.openText(record.message.sealedText, record.consumerId)
      : receiptText(record.message, registry.merchants.get(record.message.merchantId)?.name ?? 'the store');
  outbox = new OutboxDelivery({
    store,
    sender,
    limits,
    phoneOf: (consumerId) => registry.phones.of(consumerId),
    render,
    onResult: (result) => metrics.smsSent.inc({ result }),
    sends: (writer) => engine.sendsTextsOf(writer),
    logger,
  });
  const delivery = outbox;
  metrics.readAtScrape({
    outboxPending: () => delivery.pending(),
    shardsServed: () => engine.health().shards.filter((shard) => shard.state === 'serving').length,
  });

  const sockets = new Set<WebSocket<{ closed: boolean }>>();
  const inFlight = new InFlight();
  const track = <T extends { closed: boolean }>(behavior: WebSocketBehavior<T>): WebSocketBehavior<T> => ({
    ...behavior,
    open: (ws) => {
      sockets.add(ws as never);
      void behavior.open?.(ws);
    },
    message: (ws, data, isBinary) => {
      // A bug must not take the server down with it: log it and close this socket only.
      try {
        void behavior.message?.(ws, data, isBinary);
      } catch (error) {
        logger.error('socket message failed', { err: error });
        if (!ws.getUserData().closed) ws.end(CLOSE_CODES.serverError, 'internal error');
      }
    },
    close: (ws, code, message) => {
      sockets.delete(ws as never);
      behavior.close?.(ws, code, message);
    },
  });
  const app = config.tls
    ? uWS.SSLApp({ cert_file_name: config.tls.certFile, key_file_name: config.tls.keyFile })
    : uWS.App();
  const scheme = config.tls ? 'https' : 'http';
  // Behind a TLS proxy on a private address, only the proxies (and this machine) may send plain HTTP.
  const proxy =
    config.trustedProxies.length === 0
      ? undefined
      : {
          proxies: new TrustedProxies(config.trustedProxies),
          onlyThroughProxies: plainOffLoopback(config),
        };
  if (proxy) serveBehind(app, proxy);
  const origins = { allowed: config.allowedOrigins, scheme, proxy } as const;
  app.ws(
    '/v1/pos',
    track(
      posBehavior({
        engine,
        registry,
        limits,
        metrics,
        now,
        origins,
        onMoneyMoved: kick,
        logger,
        inFlight,
        codeWindows,
      }),
    ),
  );
  app.ws(
    '/v1/wallet',
    track(
      walletBehavior({
        engine,
        registry,
        keys: { hashKey: secrets.codeHashKey, sealKey: secrets.codeSealKey },
        limits,
        metrics,
        origins,
        logger,
        now,
        inFlight,
      }),
    ),
  );
  logRequestsTo(app, logger);
  trackRequestsIn(app, inFlight);
  serveWebApps(app, {
    devInbox: devInbox !== null,
    minify: config.production,
    logger,
    onAnswer: (code) => metrics.httpRequests.inc({ route: 'web', code }),
  });
  const funding = options.funding ?? fundingProvider(config.funding);
  const routes = httpRoutes(app, {
    engine,
    registry,
    store,
    limits,
    metrics,
    funding,
    devInbox,
    settlements,
    gifts,
    cutoff: { timeZone: config.settlementTimeZone, time: config.settlementCutoff },
    journalRefKey: journalRefKey(secrets.consumerIdKey),
    metricsToken: config.metricsToken,
    codeWindows,
    now,
    onTextQueued: kick,
  });

  const listenSocket = await new Promise<us_listen_socket>((resolve, reject) =>
    app.listen(config.host, config.port, (token) =>
      token ? resolve(token) : reject(new Error(`cannot listen on ${config.host}:${config.port}`)),
    ),
  );
  const port = uWS.us_socket_local_port(listenSocket as unknown as us_socket);
  const url = `${scheme}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;

  if (registry.credentials.generatedOperatorToken) {
    print(
      `paycode: operator token (printed once; set PAYCODE_ADMIN_TOKEN to choose one): ${registry.credentials.generatedOperatorToken}`,
    );
  }
  if (fresh && config.demo) for (const line of await createDemo(engine, registry, url)) print(line);
  if (!funding) print('paycode: card purchases are off (PAYCODE_FUNDING=none): consumers cannot buy value');
  print(`paycode listening on ${url}`);
  logger.info('server listening', { url, shards: config.shards, sms: devInbox ? 'console' : 'smpp' });

  let closing: Promise<void> | null = null;
  const close = () => {
    closing ??= (async () => {
      // Stop taking connections and requests, let the requests already running be answered (they are
      // durable before they are answered), then close every socket as "going away".
      logger.info('server closing', { sockets: sockets.size, requests: inFlight.size });
      uWS.us_listen_socket_close(listenSocket);
      const unfinished = await inFlight.drain(limits.shutdownDrainMs);
      if (unfinished > 0) logger.warn('server closing with requests unanswered', { requests: unfinished });
      for (const ws of sockets) ws.end(1001, 'server shutting down');
      await outbox.stop();
      await sender.close();
      await settlements.close();
      await engine.close();
      // Last, the connections still open (HTTP keep-alive ones among them), so none is answered by a
      // server that has stopped. The typings of this uWS build lack `close`, which it has.
      (app as unknown as { close(): void }).close();
    })();
    return closing;
  };
  return { url, port, engine, registry, devInbox, outbox, settlements, routes, close };
}
