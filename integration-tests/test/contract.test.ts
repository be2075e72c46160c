/**
 * The original's happy path, end to end, also the pipeline's post-deploy check: with JAFFLR_URL
 * and CHILLYBIN_URL set it runs against those services instead of starting its own.
 *
 * One vocabulary (docs/api.md): jafflr and chillybin validate their own input, so this
 * test is what keeps them agreeing. Every edge case goes to both — a toastie at jafflr's
 * `POST /toastie`, the same thing as an order at chillybin's `POST /v2/pick` — and both must
 * give the expected verdict: the same status, problem type and title, and for a 400 the same
 * error-item shape pointing at the same place where the place is the same (customer, header).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { actClient, arrangeClient, type Client, type Reply } from "testkit/http-client";
import { deployed, needsOwnProcesses, type Stall, startStall } from "../src/stall";

/** One stall for the whole file, started by whichever part needs it first. */
let started: Promise<Stall> | undefined;
const shared = () => {
  started ??= startStall();
  return started;
};
after(async () => (await started)?.stop());

const PROBLEMS = "https://toasties-galore.example/problems/";

interface Verdict {
  status: number;
  type?: string;
  title?: string;
}

const OK: Verdict = { status: 200 };
const INVALID: Verdict = {
  status: 400,
  type: `${PROBLEMS}invalid-request`,
  title: "Invalid request",
};
const UNKNOWN: Verdict = {
  status: 422,
  type: `${PROBLEMS}unknown-ingredient`,
  title: "Unknown ingredient",
};

/** A case: what is sent, what both must answer, and for a 400 where the error item points. */
interface Case<T> {
  name: string;
  value: T;
  verdict: Verdict;
}

const customers: Case<unknown>[] = [
  { name: "plain", value: "gordon", verdict: OK },
  { name: "emoji and an inner space", value: "🥪 lover", verdict: OK },
  { name: "ZWJ sequence 👩‍🍳", value: "👩‍🍳", verdict: OK },
  { name: "combining mark (José as e + U+0301)", value: "Jose\u0301", verdict: OK },
  { name: "inner spaces", value: "Gita  Rao", verdict: OK },
  { name: "exactly 64 code points", value: "a".repeat(64), verdict: OK },
  { name: "64 astral code points (128 UTF-16 units)", value: "👩".repeat(64), verdict: OK },
  { name: "65 code points", value: "a".repeat(65), verdict: INVALID },
  { name: "65 astral code points", value: "👩".repeat(65), verdict: INVALID },
  { name: "leading space", value: " gita", verdict: INVALID },
  { name: "trailing space", value: "gita ", verdict: INVALID },
  { name: "trailing tab", value: "gita\t", verdict: INVALID },
  { name: "only spaces", value: "   ", verdict: INVALID },
  { name: "empty", value: "", verdict: INVALID },
  { name: "control character BEL", value: "gi\u0007ta", verdict: INVALID },
  { name: "newline", value: "gi\nta", verdict: INVALID },
  { name: "NUL", value: "gi\u0000ta", verdict: INVALID },
  { name: "zero-width space (format)", value: "gi\u200bta", verdict: INVALID },
  { name: "right-to-left override (format)", value: "\u202egita", verdict: INVALID },
  { name: "line separator", value: "gi\u2028ta", verdict: INVALID },
  { name: "not a string", value: 42, verdict: INVALID },
];

const ingredients: Case<string>[] = [
  {
    name: "32 characters, well-formed but not stocked",
    value: `a${"b".repeat(31)}`,
    verdict: UNKNOWN,
  },
  { name: "1 character, not stocked", value: "q", verdict: UNKNOWN },
  {
    name: "digits, - and _ after the first letter, not stocked",
    value: "pickled-onion_2",
    verdict: UNKNOWN,
  },
  { name: "33 characters", value: `a${"b".repeat(32)}`, verdict: INVALID },
  { name: "uppercase", value: "Cheese", verdict: INVALID },
  { name: "digit first", value: "9grain", verdict: INVALID },
  { name: "empty", value: "", verdict: INVALID },
  { name: "trailing space", value: "ham ", verdict: INVALID },
];

/** Keys are made unique per request, so no case ever trips over another's stored key. */
const idempotencyKeys: Case<(unique: string) => string>[] = [
  { name: "255 characters", value: (u) => u.padEnd(255, "k"), verdict: OK },
  {
    name: "every visible ASCII punctuation",
    value: (u) => `${u}!"#$%&'()*+,-./:;<=>?@[\\]^_\`{|}~`,
    verdict: OK,
  },
  { name: "256 characters", value: (u) => u.padEnd(256, "k"), verdict: INVALID },
  { name: "a space inside", value: (u) => `${u} two`, verdict: INVALID },
  { name: "non-ASCII (é)", value: (u) => `${u}-clé`, verdict: INVALID },
  { name: "empty", value: () => "", verdict: INVALID },
];

describe("the original's happy path", () => {
  let cold: Client;
  let coldAct: Client;
  let grill: Client;

  before(async () => {
    if (deployed) {
      const token = process.env.CHILLYBIN_ADMIN_TOKEN;
      const auth: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      [cold, coldAct] = [
        arrangeClient(deployed.chillybinUrl, auth),
        actClient(deployed.chillybinUrl),
      ];
      grill = actClient(deployed.jafflrUrl);
    } else {
      ({ cold, coldAct, grill } = await shared());
    }
  });

  test("restock → POST /toastie?i=cheese&i=vegemite → 200 → cheese 9, vegemite 9, bread 8", async () => {
    await cold.post("/restock");
    const stocked = (await cold.get("/")).body;
    assert.deepEqual([stocked.cheese, stocked.vegemite, stocked.bread], [10, 10, 10]);
    const toastie = await grill.post("/toastie?i=cheese&i=vegemite");
    assert.equal(toastie.status, 200, toastie.text);
    assert.equal(toastie.body.status, "done");
    assert.equal(toastie.body.customer, "anonymous");
    assert.deepEqual(toastie.body.ingredients, ["cheese", "vegemite", "bread", "bread"]);
    assert.equal(toastie.body.doneness, "light");
    const left = (await cold.get("/")).body;
    assert.deepEqual([left.cheese, left.vegemite, left.bread], [9, 9, 8]);
  });

  test("v2: POST /v2/pick picks and records the order, as GET /orders/:id shows it", async () => {
    await cold.post("/restock");
    const json = { ingredient: "cheese", quantity: 2, customer: "gita" };
    const picked = await coldAct.post("/v2/pick", { json });
    assert.equal(picked.status, 200, picked.text);
    assert.equal(picked.body.customer, "gita");
    assert.deepEqual(picked.body.items, [{ ingredient: "cheese", quantity: 2 }]);
    assert.ok(!Number.isNaN(Date.parse(picked.body.createdAt)), picked.text);
    const stock = (await cold.get("/")).body;
    assert.deepEqual([stock.cheese, stock.vegemite, stock.bread], [8, 10, 10]);
    const order = await cold.get(`/orders/${encodeURIComponent(picked.body.id)}`);
    assert.deepEqual(order.body, picked.body);
  });
});

describe("one vocabulary: jafflr and chillybin give the same verdict", needsOwnProcesses, () => {
  let stall: Stall;

  before(async () => {
    stall = await shared();
    // Enough stock that no accepted case ever runs short, whichever arm jafflr picks with.
    await stall.cold.post("/restock", { json: { cheese: 10_000, bread: 10_000 } });
  });

  /** The same order, in each service's own words. */
  const toastie = (customer: unknown, names: string[], headers?: Record<string, string>) =>
    stall.grill.post("/toastie", { json: { customer, ingredients: names }, headers });
  const order = (customer: unknown, names: string[], headers?: Record<string, string>) =>
    stall.coldAct.post("/v2/pick", {
      json: { customer, items: names.map((ingredient) => ({ ingredient, quantity: 1 })) },
      headers,
    });

  describe("customer", () => {
    for (const c of customers) {
      test(`${c.name}: ${show(c.verdict)} from both`, async () => {
        const answers = {
          jafflr: await toastie(c.value, ["cheese"]),
          chillybin: await order(c.value, ["cheese"]),
        };
        assertSameVerdict(answers, c.verdict, { pointer: "/customer" });
      });
    }
  });

  describe("ingredient name", () => {
    // gita's toasties are picked with v2 and bob's with v1 while the flag says so: both arms
    // must pass chillybin's verdict on unchanged.
    for (const customer of ["gita", "bob"]) {
      for (const c of ingredients) {
        test(`${c.name} (${JSON.stringify(c.value)}), ordered by ${customer}: ${show(c.verdict)} from both`, async () => {
          const names = ["cheese", c.value];
          const answers = {
            jafflr: await toastie(customer, names),
            chillybin: await order(customer, names),
          };
          assertSameVerdict(answers, c.verdict);
          if (c.verdict === UNKNOWN) {
            assert.deepEqual(answers.jafflr.body.unknown, [c.value], "jafflr names it");
            assert.deepEqual(answers.chillybin.body.unknown, [c.value], "chillybin names it");
          }
        });
      }
    }
  });

  describe("Idempotency-Key", () => {
    for (const c of idempotencyKeys) {
      test(`${c.name}: ${show(c.verdict)} from both`, async () => {
        // One key per service: jafflr hands its key on to chillybin, and the same key for a
        // different order there would be idempotency-key-reused rather than the case under test.
        const jafflrKey = c.value(`j-${randomUUID()}`);
        const chillybinKey = c.value(`c-${randomUUID()}`);
        const answers = {
          jafflr: await toastie("gita", ["cheese"], { "idempotency-key": jafflrKey }),
          chillybin: await order("gita", ["cheese"], { "idempotency-key": chillybinKey }),
        };
        assertSameVerdict(answers, c.verdict, { header: "Idempotency-Key" });
      });
    }
  });
});

function show(v: Verdict): string {
  return v.type ? `${v.status} ${v.type.slice(PROBLEMS.length)}` : String(v.status);
}

function verdictOf(reply: Reply): Verdict {
  if (reply.status >= 200 && reply.status < 300) return { status: reply.status };
  return { status: reply.status, type: reply.body?.type, title: reply.body?.title };
}

/** Both answered `expected`; for a 400, well-formed error items, one of them at `place`. */
function assertSameVerdict(
  answers: { jafflr: Reply; chillybin: Reply },
  expected: Verdict,
  place?: Record<string, string>,
) {
  const why = Object.entries(answers).map(([name, r]) => `${name}: ${r.status} ${r.text}`);
  assert.deepEqual(verdictOf(answers.jafflr), verdictOf(answers.chillybin), why.join("\n"));
  assert.deepEqual(verdictOf(answers.jafflr), expected, why.join("\n"));
  if (expected.status !== 400) return;
  for (const [service, { body, text }] of Object.entries(answers)) {
    // 1–20 items, each exactly one place (pointer, parameter or header) and a detail.
    const items: Record<string, string>[] = body?.errors ?? [];
    assert.ok(items.length >= 1 && items.length <= 20, `${service}: ${text}`);
    for (const item of items) {
      const keys = Object.keys(item).sort();
      assert.ok(
        keys.length === 2 &&
          keys[0] === "detail" &&
          /^(header|parameter|pointer)$/.test(`${keys[1]}`),
        `${service}: an error item names one place and a detail: ${JSON.stringify(item)}`,
      );
    }
    const details = items.map((item) => item.detail).join("; ");
    assert.equal(body.detail, details, `${service}: the detail is the items' joined with "; "`);
    const at = (item: Record<string, string>) =>
      Object.entries(place ?? {}).every(([k, v]) => item[k] === v);
    assert.ok(
      !place || items.some(at),
      `${service}: no error item at ${JSON.stringify(place)}: ${text}`,
    );
  }
}
