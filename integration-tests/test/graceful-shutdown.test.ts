/**
 * A deploy replaces jafflr while customers wait for toasties: SIGTERM must let every toastie in
 * flight finish, refuse new connections, and exit 0.
 */
import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, test } from "node:test";
import { eventually } from "testkit/eventually";
import { needsOwnProcesses, type Stall, startStall } from "../src/stall";

const IN_FLIGHT = 20;

describe("jafflr's graceful shutdown", needsOwnProcesses, () => {
  let stall: Stall;

  before(async () => {
    stall = await startStall({
      // A light toastie cooks 5 s: room, even on a loaded machine, to see new connections refused
      // while they still cook (jafflr exits once they are done). Every one gets a slot at once.
      jafflrEnv: { COOK_TIME_SCALE: "5", GRILL_SLOTS: String(IN_FLIGHT + 4), GRILL_QUEUE: "32" },
    });
    await stall.chillybinArrange.post("/restock", { json: { cheese: 100, bread: 100 } });
  });

  after(async () => {
    await stall?.stop();
  });

  test(`SIGTERM with ${IN_FLIGHT} toasties in flight: all finish 200, new connections are refused, exit 0`, async () => {
    const { jafflr } = stall;
    const toasties = Array.from({ length: IN_FLIGHT }, (_, i) =>
      stall.jafflrAct.post("/toastie", {
        json: { customer: `guest-${i}`, ingredients: ["cheese"], doneness: "light" },
      }),
    );
    await eventually(
      async () => {
        const status = (await stall.jafflrArrange.get("/")).body;
        return status.toasting === IN_FLIGHT ? status : undefined;
      },
      {
        timeoutMs: 30_000,
        intervalMs: 20,
        message: () => `the ${IN_FLIGHT} toasties never were on the grill at once\n${stall.logs()}`,
      },
    );

    jafflr.child.kill("SIGTERM");
    const signalledAt = Date.now();
    const refusedWhileRunning = await eventually(
      async () => {
        const outcome = await connect(jafflr.port);
        // A connect that timed out (a stalled machine) proves nothing either way: try again.
        if (outcome === "connected" || outcome === "TIMEOUT") return undefined;
        return {
          outcome,
          running: jafflr.child.exitCode === null && jafflr.child.signalCode === null,
          afterMs: Date.now() - signalledAt,
        };
      },
      {
        timeoutMs: 5_000,
        intervalMs: 10,
        message: () => "jafflr kept accepting connections after SIGTERM",
      },
    );
    // Refused once the listener is closed; a connection caught in the accept backlog at that very
    // moment is reset instead. Either way no new connection is served.
    assert.ok(
      ["ECONNREFUSED", "ECONNRESET"].includes(refusedWhileRunning.outcome),
      `new connection: ${refusedWhileRunning.outcome}`,
    );
    assert.ok(
      refusedWhileRunning.running,
      `connections were refused while jafflr was still draining, not only after it had exited (first refusal ${refusedWhileRunning.afterMs} ms after SIGTERM)`,
    );

    const replies = await Promise.all(toasties);
    for (const [i, reply] of replies.entries()) {
      assert.equal(
        reply.status,
        200,
        `toastie ${i}: ${reply.status} ${reply.error ?? reply.text}\n${stall.logs()}`,
      );
      assert.equal(reply.body.status, "done");
      assert.equal(reply.body.customer, `guest-${i}`);
    }
    const exit = await jafflr.exited;
    assert.deepEqual(exit, { code: 0, signal: null }, `jafflr's exit\n${stall.logs()}`);

    const stock = (await stall.chillybinArrange.get("/")).body;
    assert.equal(stock.cheese, 100 - IN_FLIGHT, "every toastie was picked exactly once");
  });
});

/** A plain TCP connect: "connected", or the error code (ECONNREFUSED once the listener is closed). */
function connect(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: "127.0.0.1" });
    socket.setTimeout(1_000);
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("timeout", () => {
      socket.destroy();
      resolve("TIMEOUT");
    });
    socket.once("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
  });
}
