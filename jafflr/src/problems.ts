/**
 * Problem `type` URIs (RFC 9457) jafflr answers with. The same base as chillybin's, and the same
 * names where the problem is the same one passed on (out of stock, unknown ingredient).
 */
const BASE = "https://toasties-galore.example/problems/";

export const PROBLEM_TYPES = {
  invalidOrder: `${BASE}invalid-order`,
  outOfStock: `${BASE}out-of-stock`,
  unknownIngredient: `${BASE}unknown-ingredient`,
  orderRejected: `${BASE}order-rejected`,
  grillBusy: `${BASE}grill-busy`,
  coldStoreUnavailable: `${BASE}cold-store-unavailable`,
  coldStoreBroken: `${BASE}cold-store-broken`,
} as const;
