// Side-effect import: the first line of every service's entry point. Loading it starts the
// OpenTelemetry SDK before pg is required (its query spans come from patching it at load) and
// before the first request (tpi makes the server spans; undici's client spans need the SDK).
import { startTelemetry } from "./telemetry";

startTelemetry();
