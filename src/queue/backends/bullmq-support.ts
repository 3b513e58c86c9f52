/**
 * The BullMQ backend's private pieces: its registry scripts (one job per id and per slot) and the
 * mapping between BullMQ's job states and errors and the queue contract's.
 */
import { LuaScript } from '../../storage/index.js';
import { copyError } from './job.js';
import type { JobError, JobState } from '../contract/types.js';

export const ADMIT = new LuaScript(`
-- KEYS[1] id key, KEYS[2] slot key
-- ARGV[1] job id, ARGV[2] the id key's record: "<tier>\\n<slot path>"
-- Reply: 1 admitted (both keys written); 0 the id exists; -1 another job holds the slot;
--        2 this id already holds this slot (a repeat, or an enqueue that died before adding the job)
local holder = redis.call('GET', KEYS[2])
if redis.call('EXISTS', KEYS[1]) == 1 then
  if holder == ARGV[1] then return 2 end
  return 0
end
if holder then return -1 end
redis.call('SET', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], ARGV[1])
return 1
`);

export const FORGET = new LuaScript(`
-- KEYS[1] id key, KEYS[2] slot key
-- ARGV[1] job id
-- Reply: 1; the slot key is deleted only while it still names this id
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[1] then redis.call('DEL', KEYS[2]) end
return 1
`);

/** BullMQ's sets holding each state's jobs. */
export const BULL_TYPES: Record<JobState, Array<'wait' | 'prioritized' | 'delayed' | 'active' | 'completed' | 'failed'>> = {
  queued: ['wait', 'prioritized', 'delayed'],
  leased: ['active'],
  done: ['completed'],
  dead: ['failed'],
};

export function stateOf(bullState: string): JobState {
  switch (bullState) {
    case 'active':
      return 'leased';
    case 'completed':
      return 'done';
    case 'failed':
      return 'dead';
    default:
      return 'queued'; // waiting, delayed, prioritized, paused
  }
}

export function parseJobError(stack: string): JobError[] {
  try {
    const e = JSON.parse(stack) as Partial<JobError>;
    return typeof e.atMs === 'number' && typeof e.code === 'string' && typeof e.message === 'string' ? [copyError(e as JobError)] : [];
  } catch {
    return []; // not written by this backend
  }
}

/** BullMQ's answers for a job that is gone, not active, or locked by another token (ErrorCode -1, -2, -3, -6). */
export function isNotOwnerError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === -1 || code === -2 || code === -3 || code === -6;
}
