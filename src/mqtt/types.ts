// The shapes the bridge exchanges with the agent: handlers it calls, status and info it publishes.

/** Published retained on `<base>/<mailbox>/status`. */
export interface MailboxStatus {
  last_poll: string | null;
  result: 'ok' | string;
  error?: string;
  messages: number;
  new: number;
  alerts: number;
  alerts_today: number;
  bytes_last_poll: number;
  bytes_total: number;
  next_poll: string | null;
  connection_problem: boolean;
  outbox?: { size: number; dropped: number };
  /** Messages since start whose MIME broke a parser limit, and messages that could not be handled in the last poll. */
  limits_exceeded?: number;
  failed_last_poll?: number;
}

/** Published retained on `<base>/bridge/info`. */
export interface BridgeInfo {
  version: string;
  mailboxes: Array<{ id: string; host: string; name?: string; [k: string]: unknown }>;
  rules: Array<{ name: string; [k: string]: unknown }>;
  config_version: string | number;
  [k: string]: unknown;
}

/** The agent's side of the bridge: what MQTT commands run. */
export interface BridgeHandlers {
  /** runs a poll now (one mailbox or all); resolves when done with per-mailbox summaries */
  poll(mailbox?: string): Promise<unknown>;
  /** reloads the config and then calls Bridge.refresh(); rejects with an Error whose message is shown to the user when the config is invalid */
  reload(): Promise<unknown>;
  /** current status object */
  status(): unknown;
  /** same as `pop2mqtt test-rule`, as JSON */
  testRule(raw: Buffer): Promise<unknown>;
  info(): BridgeInfo;
}
