// chillybin's deprecated v1 route still answers — with a request it must refuse, so nothing is
// picked. Foxtrot step 3 (delete v1) deletes this file with the route.
import { test } from "node:test";
import { CHILLYBIN_URL, expectInvalidRequest } from "./smoke";

test("smoke: chillybin's GET /pick (v1) answers, refusing a bad ingredient name", async () => {
  await expectInvalidRequest(
    `${CHILLYBIN_URL}/pick?name=${encodeURIComponent("No Such Thing!")}&quantity=1`,
  );
});
