// Decides whether a file holding a secret is readable by more people than the agent, for the load-time warning.
import { statSync } from 'node:fs';

/**
 * Describes why `file` is too open for a secret, or undefined when it is fine or cannot be checked.
 * Too open: any permission for other users, or group permissions when the file's group is not the
 * agent's own group. (The systemd install ships config.yaml as 0640 root:pop2mqtt and runs as group
 * pop2mqtt: that group read is intended and not warned about.)
 */
export function secretFileExposure(file: string): string | undefined {
  let st;
  try {
    st = statSync(file);
  } catch {
    return undefined;
  }
  const mode = st.mode & 0o777;
  const ownGroup = typeof process.getgid === 'function' ? process.getgid() : undefined;
  const otherAccess = (mode & 0o007) !== 0;
  const foreignGroupAccess = (mode & 0o070) !== 0 && st.gid !== ownGroup;
  if (!otherAccess && !foreignGroupAccess) return undefined;
  const who = otherAccess ? 'other users' : `group ${st.gid}`;
  return `is accessible to ${who} (mode ${mode.toString(8).padStart(3, '0')}); run chmod 600 (or 640 with the agent's group)`;
}
