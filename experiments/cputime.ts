/**
 * CPU time of the calling thread, for job timings that hold on a shared
 * machine: a probe job's wall seconds grow with everything else running, its
 * thread's CPU seconds do not. Linux reports each thread's time on a CPU in
 * /proc/thread-self/schedstat (nanoseconds; a worker thread reads its own);
 * elsewhere there is no per-thread figure and this returns null.
 */
import { readFileSync } from "node:fs";

/** Seconds the calling thread has spent on a CPU so far, or null where the OS does not say. */
export function threadCpuSeconds(): number | null {
  try {
    const ns = Number(readFileSync("/proc/thread-self/schedstat", "utf8").split(" ")[0]);
    return Number.isFinite(ns) ? ns / 1e9 : null;
  } catch {
    return null;
  }
}
