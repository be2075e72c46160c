// Side-effect import: the first line of every service's entry point. Loading it starts the
// OpenTelemetry SDK before express and pg are required, so their spans exist.
import { startTelemetry } from "./telemetry";

startTelemetry();
