// The MQTT side's public API in one import for the agent.
export { MqttLink, BRIDGE_STATE_ONLINE, BRIDGE_STATE_OFFLINE, safeUrl } from './link.js';
export type { MqttLinkOptions, PublishOptions, MessageHandler, MessageInfo, QoS } from './link.js';
export { Bridge } from './bridge.js';
export type { BridgeOptions } from './bridge.js';
export type { BridgeHandlers, BridgeInfo, HaMailbox, HaModel, HaRule, MailboxStatus } from './types.js';
export { MqttLinkError } from './errors.js';
export type { MqttLinkErrorCode } from './errors.js';
export type { MqttSettings, HaSettings } from './settings.js';
export {
  eventTopic, eventPayload, imageTopic, mailboxStatusTopic, bridgeStateTopic, bridgeInfoTopic, requestTopic, responseTopic,
  RESERVED_MAILBOX_IDS,
} from './topics.js';
export type { EventAlert } from './topics.js';
export { buildDiscovery, discoveryFilter, discoveryNodeId } from './discovery.js';
