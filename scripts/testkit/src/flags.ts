/**
 * An Unleash client-features document with `flag` on for exactly these customers, as every tool
 * and test writes it: `flexibleRollout` at 100 % constrained to `userId IN [...]` (the shape of
 * jafflr/flags/features.json; Unleash 7 rejects the older `userWithId`).
 */
export const flagOnFor = (flag: string, values: string[]) => {
  const parameters = { rollout: "100", stickiness: "default", groupId: flag };
  const constraints = [{ contextName: "userId", operator: "IN", values }];
  const strategies = [{ name: "flexibleRollout", parameters, constraints }];
  return { version: 1, features: [{ name: flag, enabled: true, strategies }] };
};

export const pickV2FlagFile = (customers: string[]) => flagOnFor("pick.v2", customers);
