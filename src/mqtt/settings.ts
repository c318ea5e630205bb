// MQTT and Home Assistant settings as the MQTT side consumes them, with their defaults in one place.

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

/** The `homeassistant:` section of the config. */
export interface HaSettings {
  discovery?: boolean;
  prefix?: string;
  status_topic?: string;
  birth_payload?: string;
}

export const DEFAULT_BASE_TOPIC = 'pop2mqtt';
export const DEFAULT_HA_PREFIX = 'homeassistant';
/** Home Assistant's own default birth topic and payload; they do not follow the discovery prefix. */
export const DEFAULT_HA_STATUS_TOPIC = 'homeassistant/status';
export const DEFAULT_HA_BIRTH_PAYLOAD = 'online';
export const DEFAULT_RECONNECT_MIN_MS = 1_000;
export const DEFAULT_RECONNECT_MAX_MS = 60_000;
export const DEFAULT_KEEPALIVE_MS = 60_000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

export interface ResolvedHaSettings {
  discovery: boolean;
  prefix: string;
  statusTopic: string;
  birthPayload: string;
}

export function resolveHaSettings(ha: HaSettings | undefined): ResolvedHaSettings {
  const prefix = ha?.prefix || DEFAULT_HA_PREFIX;
  return {
    discovery: ha?.discovery ?? false,
    prefix,
    statusTopic: ha?.status_topic || DEFAULT_HA_STATUS_TOPIC,
    birthPayload: ha?.birth_payload || DEFAULT_HA_BIRTH_PAYLOAD,
  };
}
