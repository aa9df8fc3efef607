import { readdirSync, readFileSync } from 'node:fs';

/** Small Linux /proc readers for the baselines: process trees, liveness and CPU time. */

const USER_HZ = 100;

/** The fields of /proc/<pid>/stat after the command name (which may itself hold spaces or parens). */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Whether `pid` is a running process (a zombie counts as gone). */
export function isAlive(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== null && fields[0] !== 'Z' && fields[0] !== 'X';
}

/** The pids whose parent is `pid`, now. */
export function childrenOf(pid: number): number[] {
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    const child = Number(name);
    if (!Number.isInteger(child) || child <= 0) continue;
    const fields = statFields(child);
    if (fields && Number(fields[1]) === pid) children.push(child);
  }
  return children;
}

/**
 * CPU time (user + system) in ms used so far by `pids`, from /proc/<pid>/stat; a pid that has exited
 * counts 0. With `reapedChildren`, the time of children each pid has already waited for (cutime +
 * cstime) is added too: then a worker process that exits between two samples moves its time into its
 * parent's total instead of dropping it.
 */
export function cpuMsOf(pids: number[], options: { reapedChildren?: boolean } = {}): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = statFields(pid);
    if (!fields) continue;
    // After the name: state(0) ppid(1) ... utime(11) stime(12) cutime(13) cstime(14).
    ticks += Number(fields[11]) + Number(fields[12]);
    if (options.reapedChildren) ticks += Number(fields[13]) + Number(fields[14]);
  }
  return (ticks * 1000) / USER_HZ;
}
