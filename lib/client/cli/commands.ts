import * as cancel from './cancel';
import { CommandModule } from './context';
import * as list from './list';
import * as logs from './logs';
import * as report from './report';
import * as result from './result';
import * as runs from './runs';
import * as status from './status';
import * as submit from './submit';
import * as wait from './wait';

/** batchctl's commands, in help order. Adding one is a new module + one line here. */
export const COMMANDS: CommandModule[] = [submit, status, wait, logs, result, cancel, list, report, runs];
