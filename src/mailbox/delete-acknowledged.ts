// The last step of a poll's session: DELE the messages whose alerts the broker acknowledged (state.deletePending).
import type { Pop3Client } from '../pop3/index.js';
import type { Logger } from '../log.js';
import type { MailboxState } from '../state/mailbox-state.js';

/** DELE the messages whose alerts were all acknowledged (state.deletePending); returns the UIDs the server accepted. */
export async function deleteAcknowledged(d: { state: MailboxState; logger: Logger }, client: Pop3Client, uidByMsg: Map<number, string>): Promise<string[]> {
  const pendingDel = new Set(d.state.data.deletePending);
  const toDelete = [...uidByMsg].filter(([, uid]) => pendingDel.has(uid));
  if (!toDelete.length) return [];
  const res = await client.deleMany(toDelete.map(([m]) => m));
  const deleted: string[] = [];
  for (const [msg, uid] of toDelete) {
    const err = res.get(msg);
    if (err) d.logger.warn('DELE refused; will retry next poll', { uid, error: err.message });
    else deleted.push(uid);
  }
  return deleted;
}
