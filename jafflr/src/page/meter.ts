// Until integration-tests import MeterPoint from ./hub.
export type { MeterPoint } from "./hub";
