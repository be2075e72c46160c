/**
 * Every flag jafflr's code may ask about, passed to the flag client (src/features.ts) at start.
 * Asking for any other name is a compile error (the original panicked at runtime); tests check
 * each one is defined in the repo's flag file, so jafflr never starts warning that one is not.
 * The foxtrot's step 3 empties this list: `FlagName` becomes `never`, and no code can ask for
 * the flag it deleted.
 */
export const FLAGS = ["pick.v2"] as const;
export type FlagName = (typeof FLAGS)[number];
