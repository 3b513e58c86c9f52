/**
 * Building and copying job records, shared by the backends so they validate input identically.
 */
import { isPriorityTier } from '../contract/priority.js';
import type { EnqueueInput, Job, JobError, JsonObject } from '../contract/types.js';

/** A fresh 'queued' job from enqueue input; throws TypeError/RangeError on invalid input. */
export function createJob(input: EnqueueInput): Job {
  if (typeof input.id !== 'string' || input.id.length === 0) {
    throw new TypeError('job id must be a non-empty string');
  }
  if (typeof input.slotPath !== 'string' || input.slotPath.length === 0) {
    throw new TypeError(`job ${input.id}: slotPath must be a non-empty string`);
  }
  if (!Number.isSafeInteger(input.size) || input.size < 0) {
    throw new RangeError(`job ${input.id}: size must be an integer >= 0, got ${input.size}`);
  }
  if (!isPriorityTier(input.priority)) {
    throw new TypeError(`job ${input.id}: unknown priority ${String(input.priority)}`);
  }
  if (!Number.isFinite(input.enqueuedAtMs)) {
    throw new RangeError(`job ${input.id}: enqueuedAtMs must be finite`);
  }
  const availableAtMs = input.availableAtMs ?? input.enqueuedAtMs;
  if (!Number.isFinite(availableAtMs)) {
    throw new RangeError(`job ${input.id}: availableAtMs must be finite`);
  }
  return {
    id: input.id,
    slotPath: input.slotPath,
    size: input.size,
    priority: input.priority,
    payload: normalizePayload(input.id, input.payload),
    attempts: 0,
    errors: [],
    enqueuedAtMs: input.enqueuedAtMs,
    availableAtMs,
    state: 'queued',
  };
}

/** The payload as it reads back from JSON storage, so every backend returns the same shape. */
export function normalizePayload(id: string, payload: JsonObject): JsonObject {
  const parsed: unknown = JSON.parse(serializePayload(id, payload));
  return parsed as JsonObject;
}

export function serializePayload(id: string, payload: JsonObject): string {
  if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
    throw new TypeError(`job ${id}: payload must be a JSON object`);
  }
  return JSON.stringify(payload);
}

export function copyError(error: JobError): JobError {
  return { atMs: error.atMs, message: String(error.message), code: String(error.code) };
}
