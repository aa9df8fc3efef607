import { MERCHANT_LIVE_CODES_MAX } from './codes.ts';

/**
 * Every bound of the engine in one place, with its unit in the name. Limits are on by default; the
 * configuration may override a few of them and `validateLimits` checks the result at start-up.
 *
 * @module
 */

/** A day in milliseconds: the unit of the daily limits and of the 24-hour windows. */
export const DAY_MS = 24 * 60 * 60_000;

export const LIMITS = {
  /** Payment code lifetime (docs/http-api.md: 20 minutes). */
  codeTtlMs: 20 * 60_000,
  /** How long an expired code still answers `expired_code` instead of `invalid_code`. */
  codeTombstoneMs: 60 * 60_000,
  /** Voids are accepted this long after the redemption (and only before its day is settled). */
  voidWindowMs: DAY_MS,
  /**
   * Largest balance one card may hold, and largest single load or gift. Value owed back to a consumer
   * (a void, reversal, refund or a gift received) is never refused, so those may pass the balance limit.
   */
  cardBalanceMaxCents: 1_000_000,
  loadMaxCents: 1_000_000,
  /**
   * What one consumer may pay in a UTC day, over all merchants: a stolen phone or code is worth at most
   * this much a day. A redeem above what is left is `limit_exceeded`; a partial one approves what is left.
   */
  consumerSpendPerDayMaxCents: 250_000,
  /** Reward lots (loads with distinct expiries) per card; a load needing one more is `limit_exceeded`. */
  rewardLotsMax: 32,
  /** Attempts to draw a code not already live at the merchant before giving up. */
  codeDrawAttemptsMax: 32,
  /** Commands waiting for one shard (queued plus being applied) before new ones get `overloaded`. */
  shardInboxLengthMax: 50_000,
  /** Commands applied by a shard in one group commit. */
  shardBatchLengthMax: 4_096,
  /**
   * Young-generation heap of a shard thread. Shards allocate fast and briefly (snapshots, effects,
   * encoded records); a larger nursery makes scavenges rarer (measured: about 6% less CPU per redemption).
   */
  shardYoungGenerationMb: 64,
  /**
   * Supervision (docs/engine.md). A shard worker that dies is restarted from LMDB after a delay that
   * starts here and doubles with each death in the window, up to the maximum.
   */
  shardRestartDelayMs: 100,
  shardRestartDelayMaxMs: 5_000,
  /** A shard that dies more often than this within the window is given up: `/healthz` reports failing. */
  shardRestartsPerWindowMax: 5,
  shardRestartWindowMs: 60_000,
  /**
   * A serving shard thread says it is alive this often; one silent for `shardSilenceMaxMs` (stuck in a
   * loop or a blocked call: no batch or tick takes near that long) is ended and restarted like a dead one.
   */
  shardHeartbeatMs: 1_000,
  shardSilenceMaxMs: 10_000,
  /**
   * While the storage refuses writes (a full disk), a shard tries a small write this often, doubling up
   * to the maximum while the refusals go on, and serves writes again once one is durable.
   */
  storageProbeDelayMs: 250,
  storageProbeDelayMaxMs: 10_000,
  /**
   * How long a probe waits for its write to be reported on disk; past it the probe counts as refused and
   * the next one is scheduled (after a refused commit lmdb-js may report a flush only on a later write).
   */
  storageProbeFlushWaitMs: 1_000,
  /**
   * Cluster (docs/cluster.md). A node owns a shard while its lease lives: it renews every lease this
   * often, a lease it stopped renewing can be taken over once `shardLeaseMs` passed since its last renewal,
   * and a command routed to another node's shard that gets no answer within the timeout is answered
   * `internal` (it may have run; a retry under its key finds out). A JetStream publish (a shard's commit,
   * its marker, a shared write) not acknowledged within `clusterPublishTimeoutMs` counts as failed: the
   * shard's thread restarts and catches up from the stream, so a NATS server that died mid-publish costs
   * this long, not the client's default of 5 s, before the thread tries the newly elected leader.
   */
  shardLeaseMs: 5_000,
  shardLeaseRenewMs: 1_000,
  clusterRequestTimeoutMs: 5_000,
  clusterPublishTimeoutMs: 2_000,
  /**
   * How often the node serving shard 0 stores a snapshot of its state and truncates the logs below it
   * (engine/snapshots.ts): a node that joins replays at most this much of the logs.
   */
  clusterSnapshotIntervalMs: 60 * 60_000,
  /** A gift's step shed or lost with a shard is tried again after this, doubling, up to the maximum. */
  giftStepRetryDelayMs: 20,
  giftStepRetryDelayMaxMs: 1_000,
  /** Live (hydrated) account actors kept per shard; colder accounts live only in LMDB. */
  liveActorsPerShardMax: 20_000,
  /** Timer wheel resolution and span; later timers wait for more rounds. */
  timerTickMs: 250,
  timerWheelSlots: 4_096,
  /** Timers a shard fires per tick; the rest fire on the next tick. */
  timerFiresPerTickMax: 10_000,
  /** History entries returned at most per request. */
  historyEntriesMax: 100,
  /** Idempotency records are kept this long (docs/pos-guide.md promises at least 48 hours), then swept. */
  idempotencyRetentionMs: 72 * 60 * 60_000,
  /** Idempotency records the sweeping shard examines per timer tick. */
  idempotencySweepPerTickMax: 5_000,
  /**
   * After a pass over all idempotency records the sweep rests this long, so a small table is not read
   * again and again (records are swept at most this much after their retention).
   */
  idempotencySweepRestMs: 10 * 60_000,
  /** Idempotency keys: 1-64 characters of [A-Za-z0-9_-]. */
  idempotencyKeyLengthMax: 64,
  /** A merchant's name and a terminal's label, in characters. */
  nameLengthMax: 100,

  // Gateway. Every socket and request is bounded; a client past a bound gets a status or is closed.
  /** HTTP request body. */
  httpBodyBytesMax: 16 * 1024,
  /**
   * A body past `httpBodyBytesMax` is read to its end and dropped, up to this many bytes, so the client
   * gets its 413 instead of a reset while it is still sending; a larger one is cut off at once.
   */
  httpBodyDrainBytesMax: 1024 * 1024,
  /** WebSocket message; a larger frame closes the socket (uWS `maxPayloadLength`). */
  wsMessageBytesMax: 4 * 1024,
  /** Bytes queued for one socket before it is closed as a slow reader (`closeOnBackpressureLimit`). */
  wsBackpressureBytesMax: 256 * 1024,
  /** Silence after which uWS closes a socket (seconds, a multiple of 4; it pings before). */
  wsIdleTimeoutS: 120,
  /** A POS must finish its handshake, and a phone must send `auth`, this soon after opening. */
  wsAuthDeadlineMs: 10_000,
  /** At shutdown, requests already running get this long to be answered before the sockets close. */
  shutdownDrainMs: 10_000,
  /** Requests one socket may send per second before answers become `rate_limited`. */
  wsRequestsPerSecondMax: 2_000,
  /** A wallet socket request's `reqId`, when it is a string. */
  walletRequestIdLengthMax: 64,
  /** Open sessions per terminal and wallet sockets per consumer. */
  posConnectionsPerTerminalMax: 4,
  walletSocketsPerConsumerMax: 8,
  /** `bad_mac`, `replay` and unreadable frames tolerated on one POS session before it is closed. */
  posBadMessagesMax: 16,
  /**
   * Code guessing (docs/security.md computes what these defaults allow). A failed code (a miss) is a
   * redeem or inquire at digits that are no code here (`invalid_code`); an expired code is none. A
   * terminal locks after this many failures in a row; its merchant unlocks it.
   */
  terminalCodeFailuresMax: 3,
  /**
   * Failures of one terminal in any 24 hours. At this many the terminal answers `terminal_locked` until
   * the oldest is a day old; a merchant's unlock does not lift it (only the operator's does), so a
   * terminal never gets more guesses a day than this, however often it is unlocked.
   */
  terminalCodeFailuresPerDayMax: 8,
  /** Failures of one merchant's terminals together: per minute and per 24 hours, then `rate_limited`. */
  merchantCodeFailuresPerWindowMax: 20,
  merchantCodeFailureWindowMs: 60_000,
  merchantCodeFailuresPerDayMax: 200,
  /** Failures of all terminals together per minute, then every code attempt is `rate_limited`. */
  globalCodeFailuresPerWindowMax: 1_000,
  /**
   * A typo explained: a miss followed, at the same terminal within this long, by the approved redeem of a
   * code one slip away (a digit changed, left out or added, or two neighbours swapped). Each redeem
   * explains at most one miss, which leaves the merchant's and the global windows (its terminal still
   * counts it) and takes room in the merchant's typo budget instead, `merchantCodeTyposPerDayMax` in any
   * 24 hours; beyond it, misses stay in the windows.
   */
  codeTypoExplainMs: 5 * 60_000,
  merchantCodeTyposPerDayMax: 1_000,
  /**
   * Live payment codes per merchant, all lengths together. Whatever this says, a length never holds
   * more than its density allows (codes.ts: 12 per million), so the guessing bound does not depend on
   * it; the default is every length full, and an operator may cap merchants lower
   * (`PAYCODE_MERCHANT_LIVE_CODES_MAX`). Each shard holds its share (this divided by the shard count,
   * rounded down); a consumer asking for one more gets `rate_limited`.
   */
  merchantLiveCodesMax: MERCHANT_LIVE_CODES_MAX,
  /**
   * Phone verification: code lifetime, wrong tries per code, codes sent per phone per hour and per 24
   * hours. Taking over a phone's wallet by guessing needs one of at most 10 x 5 guesses a day to hit 1 of
   * 10^6 codes: at most 5e-5 per phone-day (docs/security.md).
   */
  otpTtlMs: 10 * 60_000,
  otpAttemptsMax: 5,
  otpSendsPerHourMax: 5,
  otpSendsPerDayMax: 10,
  /**
   * Verification texts cost money, so they are budgeted across phones too: per client address per hour
   * (behind a proxy, the proxy's) and for the whole platform per minute; beyond, `rate_limited`.
   */
  otpSendsPerAddressPerHourMax: 10,
  otpSendsPerMinuteMax: 120,
  /**
   * Inbound texts (PAY, BAL, ...): replies per number per hour, and per day to a number that holds no
   * value and never verified (an auto-responder answering our answers would loop for ever otherwise).
   * Texts beyond are dropped unanswered (STOP and CANCEL are still acted on).
   */
  smsRepliesPerNumberPerHourMax: 10,
  smsRepliesToUnknownPerDayMax: 1,
  /**
   * `GIFT` by text moves value only once the giver replies with the code texted back: the reply must
   * come within this time, and after this many wrong codes in a day `GIFT` by text is refused for the
   * rest of it (gateway/sms-gifts.ts).
   */
  smsGiftConfirmTtlMs: 10 * 60_000,
  /**
   * Gifts between phones (gateway/gifts.ts): each texts a phone that may never have used paycode, so a
   * gift is at least this much and a giver makes at most this many a day.
   */
  giftMinCents: 100,
  giftsPerDayMax: 20,
  smsGiftWrongCodesPerDayMax: 5,
  /** Terminal activation codes are single use and expire. */
  activationTtlMs: 24 * 60 * 60_000,
  /** Device tokens expire; the consumer verifies the phone again. */
  deviceTokenTtlMs: 90 * DAY_MS,
  /** Outbox: texts delivered concurrently, and the longest wait between retries of a failed one. */
  smsInFlightMax: 32,
  smsRetryDelayMaxMs: 60_000,
  /** How long one SMPP submission may wait for its answer before the text is retried. */
  smsSubmitTimeoutMs: 10_000,

  /** A settlement run also pays postings this much older than the last settled cut-off that no run paid. */
  settlementStragglerWindowMs: 60 * 60_000,

  /**
   * Merchant reports (gateway/merchant-reports.ts). The journal holds every merchant's postings, so a
   * report reads all postings of its period on the main thread, which also serves the POS. It reads this
   * many entries between two yields to the event loop (about 0.7 µs an entry, so 1-2 ms a chunk:
   * `npm run bench -- web`), at most this many per request (about 0.35 s, then the answer says where it
   * stopped). At most
   * `reportScansMax` reports read at once, and at most `reportScansPerMerchantMax` of them for one merchant,
   * so a merchant repeating requests holds one slot and leaves the others to other merchants; one more
   * is `overloaded`.
   */
  reportScanChunkEntries: 2_000,
  reportScanEntriesMax: 500_000,
  reportScansMax: 4,
  reportScansPerMerchantMax: 1,
  /** Transactions and statements returned per page, and days of the activity chart. */
  reportPageEntriesMax: 200,
  reportActivityDaysMax: 31,
} as const;

export type Limits = { -readonly [K in keyof typeof LIMITS]: number };

/**
 * Limits the HTTP API declares to its clients (gateway/api.ts, docs/openapi.json): one value for every
 * server, so the document and the server judge a request alike.
 */
export const WIRE_LIMITS: readonly (keyof Limits)[] = [
  'nameLengthMax',
  'idempotencyKeyLengthMax',
  'reportPageEntriesMax',
  'reportActivityDaysMax',
  'giftMinCents',
];

/** Limits that must not exceed another: a load above a card's balance cap, a batch above the inbox, ... */
const ORDERED_LIMITS: readonly [keyof Limits, keyof Limits][] = [
  ['loadMaxCents', 'cardBalanceMaxCents'],
  ['shardBatchLengthMax', 'shardInboxLengthMax'],
  ['shardRestartDelayMs', 'shardRestartDelayMaxMs'],
  ['storageProbeDelayMs', 'storageProbeDelayMaxMs'],
  ['giftStepRetryDelayMs', 'giftStepRetryDelayMaxMs'],
  ['terminalCodeFailuresMax', 'terminalCodeFailuresPerDayMax'],
  ['reportScansPerMerchantMax', 'reportScansMax'],
];

export function validateLimits(limits: Limits): string[] {
  const problems: string[] = [];
  for (const [name, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0)
      problems.push(`${name} must be a positive integer, not ${value}`);
  }
  for (const [smaller, larger] of ORDERED_LIMITS)
    if (limits[smaller] > limits[larger]) problems.push(`${smaller} must not exceed ${larger}`);
  if (limits.merchantLiveCodesMax > MERCHANT_LIVE_CODES_MAX)
    problems.push(`merchantLiveCodesMax must not exceed ${MERCHANT_LIVE_CODES_MAX}, every code length full`);
  // A lease renewed only as often as it lasts runs out between renewals.
  if (limits.shardLeaseRenewMs * 2 > limits.shardLeaseMs)
    problems.push('shardLeaseRenewMs must be at most half of shardLeaseMs');
  if (limits.wsIdleTimeoutS % 4 !== 0 || limits.wsIdleTimeoutS < 8)
    problems.push('wsIdleTimeoutS must be a multiple of 4, at least 8');
  for (const name of WIRE_LIMITS)
    if (limits[name] !== LIMITS[name])
      problems.push(
        `${name} is part of the HTTP API's declarations (gateway/api.ts) and stays ${LIMITS[name]}`,
      );
  return problems;
}
