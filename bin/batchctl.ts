#!/usr/bin/env node
// batchctl: wiring only. The SDK commands live in lib/client/cli (one module per command);
// run-local lives in lib/local, the one place where the CDK and runtime worlds meet; cost in lib/cost
// (it synthesizes a stage to read its template).
import { COMMANDS, runCli } from '../lib/client/cli';
import * as cost from '../lib/cost/cli-cost';
import * as runLocal from '../lib/local/cli-run-local';
import * as simulate from '../lib/simulate/cli-simulate';

// Ctrl-C stops a wait cleanly (WaitAbortedError, exit 130); any other command is ended a moment later, also 130.
const interrupt = new AbortController();
process.once('SIGINT', () => {
  interrupt.abort();
  setTimeout(() => process.exit(130), 1000).unref();
});

runCli(process.argv.slice(2), { signal: interrupt.signal }, [...COMMANDS, runLocal, cost, simulate]).then(
  (code) => {
    // A waiter's pending poll timer must not keep an interrupted process alive.
    if (interrupt.signal.aborted) process.exit(code);
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`batchctl: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 5;
  },
);
