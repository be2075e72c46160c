// Imported first by ./instrumented.ts: tracing on unless BENCH_TRACING=0 (an ablation: which part of tpi costs what).
// tpi/register must load before express, so this module imports nothing else.
const { BENCH_TRACING } = process.env; // bench/ runs outside turbo: no cached task reads it
if (BENCH_TRACING !== "0") require("tpi/register");
