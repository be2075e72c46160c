import assert from "node:assert/strict";
import { describe, it, mock } from "node:test";
import { capturingLogger } from "./helpers";

describe("createLogger", () => {
  it("stamps every line with the ISO 8601 time, across second boundaries", (t) => {
    const { logger, lines } = capturingLogger();
    const now = mock.method(Date, "now");
    t.after(() => now.mock.restore());
    const times = [1234567890123, 1234567890999, 1234567891000, 1234567891005, 42, 1234567891050];
    for (const time of times) {
      now.mock.mockImplementation(() => time);
      logger.info("tick");
    }
    assert.deepEqual(
      lines().map((l) => l.time),
      times.map((time) => new Date(time).toISOString()),
    );
  });
});
