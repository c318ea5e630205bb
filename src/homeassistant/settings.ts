// The `homeassistant:` settings with their defaults filled in (discovery prefix, Home Assistant's birth topic and payload).

/** The `homeassistant:` section of the config. */
export interface HaSettings {
  discovery?: boolean;
  prefix?: string;
  status_topic?: string;
  birth_payload?: string;
}

export const DEFAULT_HA_PREFIX = 'homeassistant';
/** Home Assistant's own default birth topic and payload; they do not follow the discovery prefix. */
export const DEFAULT_HA_STATUS_TOPIC = 'homeassistant/status';
export const DEFAULT_HA_BIRTH_PAYLOAD = 'online';

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
