/** CPU time a process has used (user + system), from /proc: where the cycles of a run went. */
import { readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100;

/** One process, or several counted as one (serve --workers: the primary and its workers). */
export type Pids = number | readonly number[];

/** `of` for one process, or added up over several. */
export const summed = (pids: Pids, of: (pid: number) => number): number => (typeof pids === 'number' ? of(pids) : pids.reduce((sum, pid) => sum + of(pid), 0));

export function cpuMicros(pids: Pids): number {
  return summed(pids, processCpuMicros);
}

function processCpuMicros(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1_000_000) / TICKS_PER_SECOND;
  } catch {
    return Number.NaN; // not Linux, or the process is gone
  }
}

/** Read and write system calls a process has made (/proc/PID/io): how many wakeups a query costs. */
export function ioSyscalls(pids: Pids): number {
  return summed(pids, processSyscalls);
}

function processSyscalls(pid: number): number {
  try {
    const io = readFileSync(`/proc/${pid}/io`, 'utf8');
    return Number(/^syscr: (\d+)$/m.exec(io)?.[1]) + Number(/^syscw: (\d+)$/m.exec(io)?.[1]);
  } catch {
    return Number.NaN;
  }
}
