// An entry point's first line: tracing must start before pg loads (its spans come from patching
// it at load) and before the first request.
import { startTelemetry } from "./telemetry";

startTelemetry();
