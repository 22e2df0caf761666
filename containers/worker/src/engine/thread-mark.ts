/** Marks a Worker started by engine/threads.ts (kept in a module of its own: entrypoints check it before loading anything). */
export const SCAN_THREAD_MARK = 'cdk-batch-platform/scan-thread';
