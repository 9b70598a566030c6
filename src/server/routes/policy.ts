/**
 * @module
 * `GET /api/v1/policy`: the supply-chain policy in force (cooldown, the deny and allow-young
 * rules as read from their files, whether removals are honoured), so an operator can see what a
 * reload took.
 */
import type { FastifyInstance } from 'fastify';
import type { LivePolicy } from '../../policy/live-policy.ts';

/** Registers the policy route. */
export function registerPolicyRoutes(app: FastifyInstance, policy: LivePolicy): void {
  app.get('/api/v1/policy', async function showPolicy() {
    const { settings } = policy;
    const current = policy.current();
    return {
      minPublishAgeMs: settings.minPublishAgeMs ?? null,
      keepRemoved: settings.keepRemoved,
      withheldAs: settings.withheldAs,
      reloads: policy.generation,
      deny: {
        file: settings.denyFile ?? null,
        rules: current.deny.map((rule) => ({ rule: rule.text, at: rule.location })),
      },
      allowYoung: {
        file: settings.allowYoungFile ?? null,
        rules: current.allowYoung.map((rule) => ({ rule: rule.text, at: rule.location })),
      },
    };
  });
}
