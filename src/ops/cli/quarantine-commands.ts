/** `quarantine list | release <id> | delete <id>` (docs/scanning.md), online or offline like the other commands. */
import type { Output } from './commands.js';
import { formatBytes, formatTime, table } from './render.js';
import { EXIT, type OpsApi } from '../types.js';

const show = (out: Output, value: unknown, human: () => string) => out.print(out.json ? JSON.stringify(value) : human());

export async function quarantineList(ops: OpsApi, out: Output): Promise<number> {
  const items = await ops.listQuarantine();
  const rows = items.map((q) => [q.id, q.slotPath, q.reason, q.signature, formatBytes(q.size), formatTime(q.quarantinedAtMs)]);
  show(out, { mode: ops.mode, quarantined: items }, () => table(['ID', 'SLOT PATH', 'REASON', 'SIGNATURE', 'SIZE', 'QUARANTINED'], rows, { right: [4] }, 'nothing in quarantine'));
  return EXIT.ok;
}

export async function quarantineRelease(ops: OpsApi, out: Output, id: string): Promise<number> {
  const released = await ops.releaseQuarantined(id);
  show(out, { released }, () => `${id}: released, published at ${released.slotPath}`);
  return EXIT.ok;
}

export async function quarantineDelete(ops: OpsApi, out: Output, id: string): Promise<number> {
  await ops.deleteQuarantined(id);
  show(out, { deleted: id }, () => `${id}: deleted with its bytes`);
  return EXIT.ok;
}
