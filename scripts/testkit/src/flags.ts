/**
 * A flag on for some customers, as every tool and test writes it: Unleash's `flexibleRollout` at
 * 100 % constrained to `userId IN [...]` (the shape of jafflr/flags/features.json; Unleash 7
 * rejects the older `userWithId`).
 */
function userIdStrategy(flag: string, userIds: string[]) {
  return {
    name: "flexibleRollout",
    parameters: { rollout: "100", stickiness: "default", groupId: flag },
    constraints: [{ contextName: "userId", operator: "IN", values: userIds }],
  };
}

/** An Unleash client-features document with `flag` on for exactly these customers. */
export const flagOnFor = (flag: string, customers: string[]) => ({
  version: 1,
  features: [{ name: flag, enabled: true, strategies: [userIdStrategy(flag, customers)] }],
});

export const pickV2FlagFile = (customers: string[]) => flagOnFor("pick.v2", customers);
