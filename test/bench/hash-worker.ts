/**
 * Benchmark helper (pipe-sink-server.ts --hash-worker=…): sha256 of an upload's bytes on a worker
 * thread, so the event loop only receives and writes. Bench-only experiment (issue 14 item 1).
 *
 * Messages from the main thread (one upload = one `id`):
 *   {op:'start', id}                                  a new digest
 *   {op:'data', id, parts:[{ab, off, len}]}          bytes to hash, in order; answered {op:'ack', id, len}
 *   {op:'end', id}                                    answered {op:'digest', id, hex, bytes}
 *   {op:'ring', id, sab, ctl}                         SharedArrayBuffer mode: the worker hashes from the
 *                                                    ring until the main thread sets ctl[ENDED]; it then
 *                                                    answers {op:'digest', …}. It blocks in Atomics.wait
 *                                                    meanwhile, so one ring upload at a time (enough here).
 * Ring control (Int32Array over its own SharedArrayBuffer: WRITTEN, CONSUMED, ENDED, SEQ, SLEEPING): counters wrap at 2^32; the ring size is a
 * power of two, so a counter's position is `counter & (size - 1)` and `(written - consumed) | 0` the fill.
 */
import { createHash, type Hash } from 'node:crypto';
import { parentPort } from 'node:worker_threads';

export const WRITTEN = 0;
export const CONSUMED = 1;
export const ENDED = 2;
/** Bumped by every write and by the end: the worker sleeps on it (no lost wake-up). */
export const SEQ = 3;
/** 1 while the worker sleeps in Atomics.wait: the main thread calls Atomics.notify only then. */
export const SLEEPING = 4;

interface Part {
  ab: ArrayBuffer;
  off: number;
  len: number;
}

type Message =
  | { op: 'start'; id: number }
  | { op: 'data'; id: number; parts: Part[] }
  | { op: 'end'; id: number }
  | { op: 'ring'; id: number; sab: SharedArrayBuffer; ctl: SharedArrayBuffer };

/** Largest slice hashed before the consumed counter moves on (frees ring space early). */
const STEP = 256 * 1024;

if (parentPort) {
  const port = parentPort;
  const running = new Map<number, { hash: Hash; bytes: number }>();
  port.on('message', (m: Message) => {
    switch (m.op) {
      case 'start':
        running.set(m.id, { hash: createHash('sha256'), bytes: 0 });
        break;
      case 'data': {
        const r = running.get(m.id)!;
        let len = 0;
        for (const p of m.parts) {
          r.hash.update(new Uint8Array(p.ab, p.off, p.len));
          len += p.len;
        }
        r.bytes += len;
        port.postMessage({ op: 'ack', id: m.id, len });
        break;
      }
      case 'end': {
        const r = running.get(m.id)!;
        running.delete(m.id);
        port.postMessage({ op: 'digest', id: m.id, hex: r.hash.digest('hex'), bytes: r.bytes });
        break;
      }
      case 'ring': {
        const ring = new Uint8Array(m.sab);
        const ctl = new Int32Array(m.ctl);
        const mask = ring.length - 1;
        const hash = createHash('sha256');
        let bytes = 0;
        for (;;) {
          const seq = Atomics.load(ctl, SEQ);
          const consumed = Atomics.load(ctl, CONSUMED);
          const written = Atomics.load(ctl, WRITTEN);
          let fill = (written - consumed) | 0;
          if (fill === 0) {
            // ENDED is set after the last WRITTEN: once it is seen, WRITTEN read again is final
            if (Atomics.load(ctl, ENDED) === 1 && Atomics.load(ctl, WRITTEN) === consumed) break;
            Atomics.store(ctl, SLEEPING, 1);
            Atomics.wait(ctl, SEQ, seq); // returns at once if a write or the end came since `seq` was read
            Atomics.store(ctl, SLEEPING, 0);
            continue;
          }
          fill = Math.min(fill, STEP);
          const at = consumed & mask;
          const first = Math.min(fill, ring.length - at);
          hash.update(ring.subarray(at, at + first));
          if (first < fill) hash.update(ring.subarray(0, fill - first));
          bytes += fill;
          Atomics.store(ctl, CONSUMED, (consumed + fill) | 0);
          Atomics.notify(ctl, CONSUMED);
        }
        port.postMessage({ op: 'digest', id: m.id, hex: hash.digest('hex'), bytes });
        break;
      }
    }
  });
}
