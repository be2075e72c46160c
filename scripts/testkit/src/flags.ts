/**
 * How every tool and test turns a flag on for some customers: Unleash's `flexibleRollout` at
 * 100 % constrained to `userId IN [...]` — the shape of jafflr/flags/features.json, and one that
 * Unleash 7 accepts (it rejects the old `userWithId` strategy).
 */
export function userIdStrategy(flag: string, userIds: string[]) {
  return {
    name: "flexibleRollout",
    parameters: { rollout: "100", stickiness: "default", groupId: flag },
    constraints: [{ contextName: "userId", operator: "IN", values: userIds }],
  };
}

/** An Unleash client-features document with `flag` on for exactly these customers. */
export function flagOnFor(flag: string, customers: string[]) {
  return {
    version: 1,
    features: [{ name: flag, enabled: true, strategies: [userIdStrategy(flag, customers)] }],
  };
}

/** An Unleash client-features document with `pick.v2` on for exactly these customers. */
export function pickV2FlagFile(customers: string[]) {
  return flagOnFor("pick.v2", customers);
}
