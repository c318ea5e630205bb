// Public entry of the rule library: compile rules, evaluate messages in stages, the types the poller and CLI use.
export { compileRules, commandMessageId, commandRefusal, describeNeed, DEFAULT_PREVIEW_LINES, type CompileOptions, type RuleSet } from './engine.js';
export type {
  MessageData, Evaluation, RuleMatch, CompiledRule, RuleTrace, ConditionTrace, Need, PendingNeed, PublishSpec, AttachmentPublishSpec,
} from './types.js';
export { RuleSchema, RulesSchema, type RuleConfig } from './schema.js';
export { renderTemplate, renderTopic, type TemplateVars } from './template.js';
export { createRateLimiter, parseRateLimit, type RateLimiter, type RateLimitSpec } from './rate-limit.js';
