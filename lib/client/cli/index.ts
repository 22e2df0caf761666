export { runCli, buildProgram } from './program';
export { COMMANDS } from './commands';
export { CliContext, EXIT } from './context';
export type { CliIo, CommandModule, GlobalOptions } from './context';
