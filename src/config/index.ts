// Public API of the config module: schema, types, loading, JSON Schema and unit parsers.
export { ConfigSchema, MailboxSchema, MqttSchema, OutboxSchema, HomeAssistantSchema, CONFIG_VERSION, PROVIDERS, AUTH_MECHANISMS, CLEARTEXT_MECHANISMS } from './schema.js';
export type { Config, ConfigInput, MailboxConfig, MqttConfig, OutboxConfig, HomeAssistantConfig } from './schema.js';
export { ConfigError, formatIssue, formatPath } from './errors.js';
export type { ConfigIssue } from './errors.js';
export { loadConfig, parseConfigText } from './load.js';
export type { LoadedConfig, ParseOptions } from './load.js';
export { configJsonSchema } from './json-schema.js';
export { parseDuration, parseSize, UnitParseError } from '../units.js';
