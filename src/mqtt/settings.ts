// MQTT settings as the MQTT side consumes them, with their defaults in one place.

/** The `mqtt:` section of the config, secrets already resolved (`password_file` read into `password`). */
export interface MqttSettings {
  /** mqtt://, mqtts://, ws:// or wss:// */
  url: string;
  base_topic?: string;
  client_id?: string;
  username?: string;
  password?: string;
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  protocol_version?: 4 | 5;
  /** keepalive in milliseconds (MQTT.js takes seconds; converted here) */
  keepalive?: number;
  /** reconnect backoff bounds in milliseconds */
  reconnect?: { min?: number; max?: number };
  /** QoS for alerts; the link itself defaults publishes to this */
  qos?: 0 | 1 | 2;
  /** how long start() waits for the first connection before resolving anyway (ms) */
  connect_timeout?: number;
}

export const DEFAULT_BASE_TOPIC = 'pop2mqtt';
export const DEFAULT_RECONNECT_MIN_MS = 1_000;
export const DEFAULT_RECONNECT_MAX_MS = 60_000;
export const DEFAULT_KEEPALIVE_MS = 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
