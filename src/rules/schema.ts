// PLACEHOLDER owned by the rules helper: the zod schema of one rule. Replaced by the full rule language.
import { z } from 'zod';

export const RuleSchema = z.object({ name: z.string().min(1) }).passthrough();
export type RuleConfig = z.infer<typeof RuleSchema>;
