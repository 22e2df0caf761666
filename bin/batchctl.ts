#!/usr/bin/env node
// batchctl: wiring only. The SDK commands live in lib/client/cli (one module per command);
// run-local lives in lib/local, the one place where the CDK and runtime worlds meet.
import { COMMANDS, runCli } from '../lib/client/cli';
import * as runLocal from '../lib/local/cli-run-local';

runCli(process.argv.slice(2), {}, [...COMMANDS, runLocal]).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`batchctl: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
