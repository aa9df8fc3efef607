import {
  closeSync,
  createReadStream,
  createWriteStream,
  existsSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable, type Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import {
  JetStreamApiCodes,
  JetStreamApiError,
  type JetStreamClient,
  jetstreamManager,
  StorageType,
} from '@nats-io/jetstream';
import { type ObjectResult, Objm } from '@nats-io/obj';
import type { Logger } from '../log/logger.ts';
import { openStore, readMeta, type Store } from '../persistence/store.ts';
import {
  type ClusterLink,
  connectCluster,
  type LogName,
  retrying,
  SHARED_LOG,
  shardLog,
} from './replicated-log.ts';

/**
 * Snapshots of a node's materialized state, so the logs can be truncated (docs/cluster.md). A snapshot is
 * a copy of the whole LMDB environment, made in one read transaction, so it holds every log's applied
 * position with exactly the state those positions produced. It goes to a JetStream object store with the
 * logs' replicas; then each log is truncated below the oldest position any live node has applied (their
 * heartbeats tell) and the snapshot's. A node whose position is below a log's first message (new, or back
 * after the logs moved past it) replaces its LMDB by the snapshot before it opens it, then follows the
 * logs from the snapshot's positions.
 *
 * @module
 */

const SNAPSHOTS_BUCKET = 'paycode-snapshots';
const SNAPSHOT = 'lmdb';
/** Where a snapshot is copied before it is stored, in the data directory. */
const SNAPSHOT_DIR_PREFIX = 'snapshot-';
/** A download that receives nothing this long is started again (the object may have been replaced). */
const DOWNLOAD_STALL_MS = 30_000;
const DOWNLOAD_ATTEMPTS = 3;

/** The object store of the snapshots, made with the logs' replicas if it does not exist yet. */
const snapshotBucket = (js: JetStreamClient, replicas: number) =>
  new Objm(js).create(SNAPSHOTS_BUCKET, { replicas, storage: StorageType.File });

/** When the stored snapshot was taken, or null when there is none. */
export async function snapshotTakenAtMs(js: JetStreamClient, replicas: number): Promise<number | null> {
  const info = await (await snapshotBucket(js, replicas)).info(SNAPSHOT);
  return info ? Date.parse(info.mtime) : null;
}

/** Every log of a cluster of `shardCount` shards. */
export const clusterLogs = (shardCount: number): LogName[] => [
  ...Array.from({ length: shardCount }, (_, shardIndex) => shardLog(shardIndex)),
  SHARED_LOG,
];

/** How far this store applied each log (by stream name). */
export function appliedPositions(store: Store, logs: readonly LogName[]): Record<string, number> {
  store.root.resetReadTxn();
  return Object.fromEntries(logs.map((log) => [log.stream, readMeta(store, log.position)?.seq ?? 0]));
}

export interface Snapshot {
  /** Each log's position in the snapshot. */
  positions: Record<string, number>;
  /** Where each log was truncated: messages below this sequence are gone. */
  truncatedBelow: Record<string, number>;
  bytes: number;
}

/**
 * Takes a snapshot of `store` and truncates the logs. `oldestApplied` is the lowest position of a log
 * among the live nodes (this one included); a log is kept from the lower of it and the snapshot's.
 */
export async function takeSnapshot(options: {
  js: JetStreamClient;
  store: Store;
  dataDir: string;
  logs: readonly LogName[];
  replicas: number;
  oldestApplied: (stream: string) => number;
  /** Resolves once this node's own writes made so far are in the shared log (shared-writes.ts). */
  published: () => Promise<void>;
}): Promise<Snapshot> {
  const { js, store, dataDir, logs } = options;
  // Copies an earlier snapshot left when the process ended midway.
  for (const entry of readdirSync(dataDir))
    if (entry.startsWith(SNAPSHOT_DIR_PREFIX)) rmSync(join(dataDir, entry), { recursive: true, force: true });
  const dir = mkdtempSync(join(dataDir, SNAPSHOT_DIR_PREFIX));
  try {
    const copyDir = join(dir, 'lmdb');
    mkdirSync(copyDir);
    await store.root.backup(copyDir, true);
    // The main thread's writes reach LMDB before the shared log: the copy may hold some not yet stored.
    await options.published();
    const copy = openStore(dir);
    const positions = appliedPositions(copy, logs);
    await copy.root.close();
    const file = join(copyDir, 'data.mdb');
    const objects = await snapshotBucket(js, options.replicas);
    const stored = await objects.put(
      { name: SNAPSHOT, metadata: { positions: JSON.stringify(positions) } },
      Readable.toWeb(createReadStream(file)) as ReadableStream<Uint8Array>,
    );
    const jsm = await js.jetstreamManager();
    const truncatedBelow: Record<string, number> = {};
    for (const log of logs) {
      const keepFrom = Math.min(positions[log.stream] ?? 0, options.oldestApplied(log.stream)) + 1;
      if (keepFrom <= 1) continue;
      await retrying(() => jsm.streams.purge(log.stream, { seq: keepFrom }));
      truncatedBelow[log.stream] = keepFrom;
    }
    return { positions, truncatedBelow, bytes: stored.size };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Before a cluster node opens its LMDB: if some log no longer holds the messages after this node's
 * position, replaces the LMDB by the latest snapshot (the old one is removed: everything in it came from
 * the logs). True when it did.
 */
export async function restoreIfBehind(options: {
  link: ClusterLink;
  dataDir: string;
  shardCount: number;
  publishTimeoutMs: number;
  logger: Logger;
}): Promise<boolean> {
  const { dataDir, logger } = options;
  const logs = clusterLogs(options.shardCount);
  const { nc, js } = await connectCluster(options.link, options.publishTimeoutMs);
  try {
    const jsm = await retrying(() => jetstreamManager(nc, { timeout: 2_000 }));
    const firstKept: Record<string, number> = {};
    for (const log of logs) {
      // A log that does not exist yet holds nothing to fall behind; any other failure is tried again.
      const info = await retrying(() =>
        jsm.streams.info(log.stream).catch((error: unknown) => {
          if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound)
            return null;
          throw error;
        }),
      );
      if (info) firstKept[log.stream] = info.state.first_seq;
    }
    const local = existsSync(join(dataDir, 'lmdb')) ? openStore(dataDir) : null;
    const applied = local ? appliedPositions(local, logs) : {};
    await local?.root.close();
    const behind = (positions: Record<string, number>) =>
      logs.filter((log) => (positions[log.stream] ?? 0) + 1 < (firstKept[log.stream] ?? 0));
    if (behind(applied).length === 0) return false;
    const restoring = join(dataDir, 'lmdb.restoring');
    for (let attempt = 1; ; attempt++) {
      const found = await retrying(async () => (await new Objm(js).open(SNAPSHOTS_BUCKET)).get(SNAPSHOT));
      if (!found)
        throw new Error(
          'the logs were truncated past this node, and no snapshot is stored to rebuild it from',
        );
      const positions = JSON.parse(found.info.metadata?.positions ?? '{}') as Record<string, number>;
      if (behind(positions).length > 0) throw new Error('the stored snapshot is older than the logs kept');
      rmSync(restoring, { recursive: true, force: true });
      mkdirSync(restoring, { recursive: true });
      const file = join(restoring, 'data.mdb');
      const failed = await download(found, file).then(
        () => null,
        (error: unknown) => error,
      );
      if (failed) {
        if (attempt >= DOWNLOAD_ATTEMPTS) throw failed;
        logger.warn('the snapshot download failed; starting again', { err: failed as Error });
        continue;
      }
      rmSync(join(dataDir, 'lmdb'), { recursive: true, force: true });
      renameSync(restoring, join(dataDir, 'lmdb'));
      logger.warn('the logs were truncated past this node: its LMDB was replaced by the latest snapshot', {
        behind: behind(applied).map((log) => log.stream),
        bytes: found.info.size,
      });
      return true;
    }
  } finally {
    await nc.close();
  }
}

/**
 * Writes an object's data to `file`, on disk before it resolves; fails if the data stops coming for
 * `DOWNLOAD_STALL_MS` or the object store reports it incomplete.
 */
async function download(found: ObjectResult, file: string): Promise<void> {
  const data = Readable.fromWeb(found.data as Parameters<typeof Readable.fromWeb>[0]);
  let stall: NodeJS.Timeout | undefined;
  const watch = () => {
    clearTimeout(stall);
    stall = setTimeout(() => data.destroy(new Error('the snapshot download stalled')), DOWNLOAD_STALL_MS);
  };
  data.on('data', watch);
  watch();
  // Read whatever happens: its rejection must never be left unhandled.
  const incomplete = found.error.then(
    (error) => error,
    (error: unknown) => error,
  );
  try {
    await pipeline(data, createWriteStream(file) as Writable);
  } finally {
    clearTimeout(stall);
  }
  const error = await incomplete;
  if (error) throw error;
  const fd = openSync(file, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
