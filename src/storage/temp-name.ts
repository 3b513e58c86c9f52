/**
 * Names for temp files that are renamed or linked into place. They need to be unique, not
 * unguessable: a random prefix drawn once per process (instances sharing a data directory never
 * collide) and a counter. A random draw per name cost a syscall on every record write (~25 µs
 * each under load here, four per upload; docs/performance.md).
 */
import { randomBytes } from 'node:crypto';

const PROCESS_PREFIX = randomBytes(6).toString('hex');
let counter = 0;

/** A suffix unique among every temp name of every process sharing the directory. */
export function tempSuffix(): string {
  counter = (counter + 1) % Number.MAX_SAFE_INTEGER;
  return `${PROCESS_PREFIX}${counter.toString(36)}`;
}
