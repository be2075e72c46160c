import { AsyncLocalStorage } from "node:async_hooks";
import { type Context, context, createContextKey, ROOT_CONTEXT } from "@opentelemetry/api";

/** What every log line written while serving a request should carry. */
export interface RequestContext {
  requestId: string;
}

const REQUEST = createContextKey("tpi request context");

/** Only used when tracing is off (tests, tools): otherwise the request rides in OTel's context. */
const storage = new AsyncLocalStorage<RequestContext>();

/**
 * Runs a request's handlers with its context. With tracing on, the request context rides in
 * OpenTelemetry's context beside the server span (when there is one), so each request enters one
 * AsyncLocalStorage, not two.
 */
export function runWithContext<T>(
  ctx: RequestContext,
  traceContext: Context | undefined,
  tracing: boolean,
  fn: () => T,
): T {
  if (!tracing) return storage.run(ctx, fn);
  return context.with((traceContext ?? ROOT_CONTEXT).setValue(REQUEST, ctx), fn);
}

export function currentContext(): RequestContext | undefined {
  return (context.active().getValue(REQUEST) as RequestContext | undefined) ?? storage.getStore();
}
