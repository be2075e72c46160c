/**
 * The test kit's pieces the bench uses, in one place: a throwaway database per run and the
 * pick.v2 flag document jafflr's tests use too.
 */

export { pickV2FlagFile } from "testkit/flags";
export { createTestDatabase, type TestDatabase } from "testkit/test-db";
