// Typed errors of the MQTT link, so callers (the outbox) can tell "retry later" from "broker refused".

export type MqttLinkErrorCode =
  | 'MQTT_OFFLINE'        // publish/subscribe attempted while not connected
  | 'MQTT_DISCONNECTED'   // connection lost before the broker acknowledged
  | 'MQTT_REJECTED'       // broker answered with a failure reason code (MQTT 5 PUBACK/SUBACK >= 0x80)
  | 'MQTT_STOPPED'        // the link was stopped
  | 'MQTT_TIMEOUT'        // no acknowledgement in time
  | 'MQTT_SETTINGS';      // unusable settings (unreadable TLS file, bad URL)

export class MqttLinkError extends Error {
  readonly code: MqttLinkErrorCode;
  /** true when retrying the same operation later may succeed */
  readonly retryable: boolean;
  constructor(code: MqttLinkErrorCode, message: string, retryable?: boolean) {
    super(message);
    this.name = 'MqttLinkError';
    this.code = code;
    this.retryable = retryable ?? (code === 'MQTT_OFFLINE' || code === 'MQTT_DISCONNECTED' || code === 'MQTT_TIMEOUT');
  }
}
