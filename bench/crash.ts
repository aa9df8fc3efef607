import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { idempotencyScope } from '../core/commands.ts';
import { Engine } from '../engine/engine.ts';
import { loadSecrets } from '../persistence/secrets.ts';
import { openStore } from '../persistence/store.ts';
import { PosClient } from '../sdk/pos-client.ts';
import { freePort } from './baselines/services.ts';
import { random, sleep } from './measure.ts';
import {
  type Fleet,
  http,
  type PaycodeServer,
  setupFleet,
  startPaycode,
  WalletSocket,
} from './pos-server.ts';

/**
 * Crash recovery under load. The real server runs in a child process on one data directory; POS
 * terminals redeem, void and refund over their WebSockets (retrying with the same key through the
 * outage, as a till does) while phones hold wallet sockets open; at random moments the server is
 * killed with SIGKILL and started again on the same directory; at the end it is stopped with SIGTERM.
 * Then a checker opens the data directory and compares everything the clients saw acknowledged with
 * what was recovered:
 * - every acknowledged redemption, void, refund and reversal is in the journal exactly once, under the
 *   key's stored answer, and no posting is there twice;
 * - no code paid twice: after each restart one till shows its last paid code again, and it is refused
 *   (the same digits may have been drawn again for someone else meanwhile: paying that one is fine); no
 *   consumer has more redemptions in the journal than codes it was given;
 * - the start-up audit and a full audit pass: each wallet equals its journal, the ledger sums to zero,
 *   live codes and holds agree with the code index;
 * - the SMS outbox holds exactly one confirmation per acknowledged event (texts are not delivered
 *   during the run: the SMPP peer is unreachable, so the outbox keeps them);
 * - and, on a copy of the data with one acknowledged sale's confirmation removed, the checker says so.
 */
export interface CrashOptions {
  cycles: number;
  terminals: number;
  consumers: number;
  /** Wallet sockets kept open (and reopened after each restart). */
  wallets: number;
  shards: number;
  /** Load runs this long (a random time in the range) before each kill. */
  loadMsMin: number;
  loadMsMax: number;
  seed: number;
  log: (line: string) => void;
}

export interface CrashReport {
  options: Omit<CrashOptions, 'log'>;
  acknowledged: Record<'redeem' | 'void' | 'refund' | 'reversed' | 'declined' | 'gift', number>;
  /** Spent codes shown again after a restart, and how many were refused (all, when nothing is wrong). */
  spentShownAgain: number;
  spentRefused: number;
  /** Requests that got no answer even after the client's retries (allowed, and checked: at most once). */
  unanswered: number;
  restartMs: number[];
  sigtermExitCode: number | null;
  problems: string[];
  /** The checker run on a copy with one acknowledged sale's confirmation removed reported it. */
  lossDetected: boolean;
  durationMs: number;
}

type ErrorBody = { error?: { code?: string } };

/** A gift between two of the fleet's phones, as its giver saw it answered. */
interface GiftAck {
  key: string;
  status: string;
  giftId?: string;
  from: string;
  to: string;
}

interface Ack {
  /** `again`: a code already paid, presented once more after a restart under a new key. */
  kind: 'redeem' | 'again' | 'void' | 'refund';
  key: string;
  terminalId: string;
  status: string;
  authId?: string;
  refundId?: string;
  /** For `again`: the sale that spent the code. */
  spentBy?: string;
}

export async function crashRun(options: CrashOptions): Promise<CrashReport> {
  // Tills and consumers pair up by merchant (two of them), so a till count must be even.
  if (options.terminals < 2 || options.terminals % 2 !== 0)
    throw new Error('the crash run needs an even number of terminals (two merchants)');
  const started = performance.now();
  const rand = random(options.seed);
  const root = mkdtempSync(join(tmpdir(), 'paycode-crash-'));
  const port = await freePort();
  const start = (env: Record<string, string> = {}) =>
    startPaycode({ shards: options.shards, dataDir: root, port, env });
  try {
    // The fleet is made with texts printed (the verification codes are read from the development inbox);
    // the run itself sends texts to an SMPP peer that never answers, so every confirmation stays queued.
    let server: PaycodeServer = await start();
    const merchants = 2;
    const fleet: Fleet = await setupFleet(server.url, {
      merchants,
      terminals: options.terminals,
      consumers: options.consumers,
      hotMerchant: false,
    });
    await server.stop();
    const silentSms = { PAYCODE_SMS: `smpp://paycode:secret@127.0.0.1:${await freePort()}` };
    server = await start(silentSms);

    const acks: Ack[] = [];
    const codesGiven = new Array<number>(options.consumers).fill(0);
    let unanswered = 0;
    let stopping = false;
    const restartMs: number[] = [];
    const tills: (PosClient | null)[] = [];
    const lastSales: ({ code: string; authId: string; terminalId: string } | null)[] = [];

    const issueCode = async (consumer: number): Promise<string | null> => {
      const { merchantId, deviceToken } = fleet.consumers[consumer] as Fleet['consumers'][number];
      while (!stopping) {
        const answer = await http(server.url, 'POST', '/v1/wallet/codes', { merchantId }, deviceToken).catch(
          () => null,
        );
        if (answer?.status === 201) {
          codesGiven[consumer] = (codesGiven[consumer] ?? 0) + 1;
          return String(answer.body.code);
        }
        await sleep(50);
      }
      return null;
    };

    const till = async (t: number) => {
      const terminal = fleet.terminals[t] as Fleet['terminals'][number];
      // Consumer c holds value at merchant c mod 2, terminal t belongs to merchant t mod 2, and only this
      // till serves consumers c ≡ t (mod terminals), so no two tills replace each other's codes.
      const mine = fleet.consumers.map((_, c) => c).filter((c) => c % options.terminals === t);
      let pos: PosClient | null = null;
      for (let n = 0; !stopping; n++) {
        pos ??= await PosClient.connect({
          url: server.url,
          terminalId: terminal.terminalId,
          terminalKey: terminal.terminalKey,
          timeoutMs: 5_000,
          attemptsMax: 8,
        }).catch(() => null);
        tills[t] = pos;
        if (!pos) {
          await sleep(100);
          continue;
        }
        const consumer = mine[n % mine.length] as number;
        const record = (ack: Omit<Ack, 'terminalId'>) =>
          acks.push({ ...ack, terminalId: terminal.terminalId });
        // After a restart one till shows its last paid code again: it must not pay a second time. (One till
        // per restart, so no till nears its daily budget of failed codes.)
        const code = await issueCode(consumer);
        if (code === null) break;
        const key = `r-${t}-${n}`;
        try {
          const sale = await pos.redeem({ code, amountCents: 100 + Math.floor(rand() * 500), key });
          record({
            kind: 'redeem',
            key,
            status: sale.status,
            authId: sale.authId as string | undefined,
          });
          if (sale.status !== 'approved') continue;
          const authId = sale.authId as string;
          lastSales[t] = { code, authId, terminalId: terminal.terminalId };
          const roll = rand();
          if (roll < 0.15) {
            const voided = await pos.void(authId, `v-${t}-${n}`);
            record({ kind: 'void', key: `v-${t}-${n}`, status: voided.status, authId });
          } else if (roll < 0.3) {
            const half = Math.max(1, Math.floor(Number(sale.approvedCents) / 2));
            const refunded = await pos.refund(authId, half, `f-${t}-${n}`);
            record({
              kind: 'refund',
              key: `f-${t}-${n}`,
              status: refunded.status,
              authId,
              refundId: refunded.refundId as string | undefined,
            });
          }
        } catch {
          unanswered++;
        }
      }
      pos?.close();
    };

    // Phones give a dollar of gift value to another phone of their merchant, so kills land between the two
    // halves of gift sagas (the giver's debit and the receiver's credit are on different accounts).
    const giftAcks: GiftAck[] = [];
    const giver = async (g: number) => {
      const from = fleet.consumers[g] as Fleet['consumers'][number];
      const to = fleet.consumers[(g + 2) % fleet.consumers.length] as Fleet['consumers'][number];
      for (let n = 0; !stopping; n++) {
        const key = `g-${g}-${n}`;
        const body = {
          merchantId: from.merchantId,
          toPhone: to.phone,
          amountCents: 100,
          idempotencyKey: key,
        };
        const answer = await http(server.url, 'POST', '/v1/wallet/gifts', body, from.deviceToken).catch(
          () => null,
        );
        if (answer === null || answer.status >= 500) unanswered++;
        else
          giftAcks.push({
            key,
            status: answer.status === 201 ? 'approved' : String((answer.body as ErrorBody).error?.code),
            giftId: (answer.body as { giftId?: string }).giftId,
            from: from.phone,
            to: to.phone,
          });
        // Spaced so the day's count (giftsPerDayMax, counted from each start) lasts a cycle: the gifts
        // stay real gifts, not refusals, when the kills come.
        await sleep(100);
      }
    };

    // Phones with the wallet open: they receive every push and are reopened after each restart.
    const phones = async (w: number) => {
      const consumer = fleet.consumers[w % fleet.consumers.length] as Fleet['consumers'][number];
      while (!stopping) {
        const socket = await WalletSocket.open(server.wsUrl, consumer.deviceToken).catch(() => null);
        if (socket) await socket.closed;
        else await sleep(100);
      }
    };

    const givers = Math.min(4, fleet.consumers.length);
    const load = [
      ...fleet.terminals.map((_, t) => till(t)),
      ...Array.from({ length: givers }, (_, g) => giver(g)),
      ...Array.from({ length: options.wallets }, (_, w) => phones(w)),
    ];
    for (let cycle = 1; cycle <= options.cycles; cycle++) {
      await sleep(options.loadMsMin + rand() * (options.loadMsMax - options.loadMsMin));
      const before = acks.length;
      const killedAt = performance.now();
      await server.kill();
      server = await start(silentSms);
      restartMs.push(performance.now() - killedAt);
      // One till shows its last paid code again: it must not pay a second time. (One till per restart,
      // so no till nears its daily budget of failed codes.)
      const t = (cycle - 1) % options.terminals;
      const sale = lastSales[t];
      if (sale && tills[t]) {
        const key = `a-${cycle}`;
        const again = await tills[t].redeem({ code: sale.code, amountCents: 100, key }).catch(() => null);
        if (again === null) unanswered++;
        else
          acks.push({
            kind: 'again',
            key,
            terminalId: sale.terminalId,
            status: again.status,
            authId: again.authId as string | undefined,
            spentBy: sale.authId,
          });
      }
      options.log(
        `  cycle ${cycle}/${options.cycles}: killed after ${before} acknowledged answers, back in ${Math.round(restartMs.at(-1) ?? 0)} ms`,
      );
    }
    await sleep(options.loadMsMin);
    stopping = true;
    await Promise.all(load.slice(0, fleet.terminals.length + givers));
    // SIGTERM with the phones still connected: the server closes their sockets and exits 0.
    const sigtermExitCode = await server.stop();
    await Promise.all(load);

    const dataDir = join(root, 'data');
    const problems = await check(dataDir, fleet, acks, giftAcks, codesGiven, unanswered, options.shards);
    const lossDetected = await checkerSeesLoss(
      root,
      fleet,
      acks,
      giftAcks,
      codesGiven,
      unanswered,
      options.shards,
    );
    if (sigtermExitCode !== 0) problems.push(`SIGTERM: the server exited with ${sigtermExitCode}, not 0`);
    const count = (kind: Ack['kind'], status: string) =>
      acks.filter((ack) => ack.kind === kind && ack.status === status).length;
    const { log: _log, ...shape } = options;
    return {
      options: shape,
      acknowledged: {
        redeem: count('redeem', 'approved'),
        void: count('void', 'approved'),
        refund: count('refund', 'approved'),
        reversed: count('redeem', 'reversed'),
        declined: acks.filter(
          (ack) => ack.kind !== 'again' && ack.status !== 'approved' && ack.status !== 'reversed',
        ).length,
        gift: giftAcks.filter((ack) => ack.status === 'approved').length,
      },
      spentShownAgain: acks.filter((ack) => ack.kind === 'again').length,
      spentRefused: acks.filter((ack) => ack.kind === 'again' && ack.status === 'invalid_code').length,
      unanswered,
      restartMs,
      sigtermExitCode,
      problems,
      lossDetected,
      durationMs: performance.now() - started,
    };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/**
 * The checker run on a copy of the data directory from which the confirmation text of one acknowledged
 * sale was removed (a loss the audits cannot see): it must report it.
 */
async function checkerSeesLoss(
  root: string,
  fleet: Fleet,
  acks: Ack[],
  giftAcks: GiftAck[],
  codesGiven: number[],
  unanswered: number,
  shards: number,
): Promise<boolean> {
  const sale = acks.find((ack) => ack.kind === 'redeem' && ack.status === 'approved');
  if (!sale) return false;
  const copy = join(root, 'tampered');
  cpSync(join(root, 'data'), copy, { recursive: true });
  const store = openStore(copy);
  try {
    for (const { key, value } of store.outbox.getRange()) {
      if (value.message.kind === 'receipt' && value.message.ref === sale.authId)
        await store.outbox.remove(key);
    }
  } finally {
    await store.root.close();
  }
  const problems = await check(copy, fleet, acks, giftAcks, codesGiven, unanswered, shards);
  return problems.some((problem) => problem.includes(`redeem|${sale.authId}`));
}

/**
 * What the server left in the data directory, read before the checker's engine opens it: opening an
 * engine finishes the gift sagas it finds, which would hide one the server left unfinished.
 */
async function readRecovered(dataDir: string) {
  const store = openStore(dataDir);
  try {
    const postings = new Map<string, number>();
    const redeemsOf = new Map<string, number>();
    // Value in transit per gift: what its debit put in less what its credit took out.
    const inTransit = new Map<string, number>();
    for (const { value } of store.journal.getRange()) {
      // A gift posts twice under its id, once on each side.
      const id =
        value.kind === 'gift' ? `gift|${value.ref}|${value.consumerId}` : `${value.kind}|${value.ref}`;
      postings.set(id, (postings.get(id) ?? 0) + 1);
      if (value.kind === 'gift')
        for (const leg of value.legs)
          if (leg.account.startsWith('transit'))
            inTransit.set(value.ref, (inTransit.get(value.ref) ?? 0) + leg.cents);
      if (value.kind === 'redeem')
        redeemsOf.set(value.consumerId, (redeemsOf.get(value.consumerId) ?? 0) + 1);
    }
    const receipts = new Map<string, number>();
    for (const { value } of store.outbox.getRange()) {
      if (value.message.kind !== 'receipt') continue;
      const id = `${value.message.event}|${value.message.ref}`;
      receipts.set(id, (receipts.get(id) ?? 0) + 1);
    }
    return { postings, redeemsOf, inTransit, receipts, sagasLeft: Array.from(store.sagas.getRange()).length };
  } finally {
    await store.root.close();
  }
}

/** Compares the acknowledged answers with the recovered data directory; returns what does not hold. */
async function check(
  dataDir: string,
  fleet: Fleet,
  acks: Ack[],
  giftAcks: GiftAck[],
  codesGiven: number[],
  unanswered: number,
  shards: number,
): Promise<string[]> {
  const problems: string[] = [];
  let recovered: Awaited<ReturnType<typeof readRecovered>>;
  let engine: Engine;
  try {
    recovered = await readRecovered(dataDir);
    engine = await Engine.open({ dataDir, secrets: loadSecrets(join(dataDir, 'secrets.json')), shards });
  } catch (error) {
    return [`the data directory does not open: ${(error as Error).message}`];
  }
  try {
    const audit = await engine.audit();
    problems.push(...audit.problems.map((problem) => `audit: ${problem}`));
    if (audit.ledgerSumCents !== 0) problems.push(`the ledger sums to ${audit.ledgerSumCents}, not 0`);

    const { store } = engine;
    const { postings, redeemsOf, inTransit, receipts, sagasLeft } = recovered;
    for (const [id, count] of postings) if (count > 1) problems.push(`posting ${id} is there ${count} times`);
    for (const [id, count] of receipts) if (count > 1) problems.push(`${count} confirmations for ${id}`);

    const acknowledged = new Set<string>();
    const exactlyOnce = (id: string, what: string) => {
      acknowledged.add(id);
      if (postings.get(id) !== 1)
        problems.push(`${what}: posting ${id} is there ${postings.get(id) ?? 0} times`);
      if (receipts.get(id) !== 1) problems.push(`${what}: ${receipts.get(id) ?? 0} confirmations for ${id}`);
    };
    for (const ack of acks) {
      const what = `${ack.kind} ${ack.key} (${ack.status})`;
      const stored = store.idempotency.get([`t:${ack.terminalId}`, ack.key]);
      if (ack.status === 'approved') {
        if (!stored) problems.push(`${what}: the key's answer was not kept`);
        else if (stored.reply.status !== 'approved')
          problems.push(`${what}: the key now says ${stored.reply.status}`);
      }
      if ((ack.kind === 'redeem' || ack.kind === 'again') && ack.status === 'approved') {
        if (stored?.reply.authId !== ack.authId)
          problems.push(`${what}: the key holds another authorization`);
      }
      if (ack.kind === 'redeem' && ack.status === 'approved') exactlyOnce(`redeem|${ack.authId}`, what);
      if (ack.kind === 'redeem' && ack.status === 'reversed') {
        const authId = stored?.reply.authId;
        if (typeof authId !== 'string') problems.push(`${what}: no authorization under the key`);
        else {
          exactlyOnce(`redeem|${authId}`, what);
          exactlyOnce(`reverse|${authId}`, what);
        }
      }
      if (ack.kind === 'redeem' && ack.status === 'nothing_to_reverse' && stored?.reply.status === 'approved')
        problems.push(`${what}: yet the key holds an approved sale`);
      if (ack.kind === 'again' && ack.status === 'approved') {
        // The same digits may have been drawn again for someone else since; paying that code is fine,
        // paying the spent one again is not.
        const holder = (authId: string | undefined) => store.auths.get(authId ?? '')?.consumerId;
        if (holder(ack.authId) === undefined || holder(ack.authId) === holder(ack.spentBy))
          problems.push(`${what}: the code spent by ${ack.spentBy} paid again`);
        exactlyOnce(`redeem|${ack.authId}`, what);
      }
      if (ack.kind === 'void' && ack.status === 'approved') exactlyOnce(`void|${ack.authId}`, what);
      if (ack.kind === 'refund' && ack.status === 'approved') exactlyOnce(`refund|${ack.refundId}`, what);
    }
    // Every gift is whole after the restarts, answered or not: nothing is left between its two halves.
    for (const [giftId, cents] of inTransit)
      if (cents !== 0) problems.push(`gift ${giftId}: ${cents} in transit`);
    if (sagasLeft > 0) problems.push(`${sagasLeft} gift sagas were left unfinished`);
    for (const ack of giftAcks) {
      if (ack.status !== 'approved') continue;
      const what = `gift ${ack.key}`;
      const from = engine.consumerIdFor(ack.from);
      const stored = store.idempotency.get([idempotencyScope.consumer(from), ack.key]);
      if (stored?.reply.giftId !== ack.giftId) problems.push(`${what}: the key holds another gift`);
      for (const side of [from, engine.consumerIdFor(ack.to)]) {
        const id = `gift|${ack.giftId}|${side}`;
        acknowledged.add(id);
        if (postings.get(id) !== 1)
          problems.push(`${what}: posting ${id} is there ${postings.get(id) ?? 0} times`);
      }
      for (const event of ['giftSent', 'giftReceived'])
        if (receipts.get(`${event}|${ack.giftId}`) !== 1)
          problems.push(`${what}: ${receipts.get(`${event}|${ack.giftId}`) ?? 0} ${event} texts`);
    }
    fleet.consumers.forEach((consumer, c) => {
      const paid = redeemsOf.get(engine.consumerIdFor(consumer.phone)) ?? 0;
      if (paid > (codesGiven[c] ?? 0))
        problems.push(`${consumer.phone} paid ${paid} times with ${codesGiven[c]} codes`);
    });
    // Postings nobody saw acknowledged can only come from requests whose answer was lost.
    const unseen = [...postings.keys()].filter(
      (id) => !acknowledged.has(id) && /^(redeem|void|refund)\|/.test(id),
    ).length;
    if (unseen > unanswered)
      problems.push(`${unseen} postings nobody saw, but only ${unanswered} lost answers`);
  } finally {
    await engine.close();
  }
  return problems;
}
