import { describeFailure, forEachInOrder } from '../../../lambda/aggregate/aggregate';
import { chunkOutputKey, doneMarkerKey, failureKey, ManifestChunk } from '../../../lambda/planner/run-layout';

const chunk: ManifestChunk = {
  index: 4,
  bucket: 'b',
  key: 'in.jsonl',
  startByte: 100,
  endByte: 200,
  estimatedRecords: 1,
  route: 'batch',
  format: 'jsonl',
  gzip: false,
  inputFormat: 'jsonl',
  outputKey: chunkOutputKey('r', 4),
  doneKey: doneMarkerKey('r', 4),
  failureKey: failureKey('r', 4),
  done: false,
};

describe('describeFailure', () => {
  test('reads the message of a Lambda error cause', () => {
    const cause = JSON.stringify({ errorType: 'ChunkFailed', errorMessage: 'chunk 4: too many rejects', trace: ['x'] });
    expect(describeFailure(chunk, { Error: 'ChunkFailed', Cause: cause }, false)).toEqual({
      index: 4,
      key: 'in.jsonl',
      startByte: 100,
      endByte: 200,
      error: 'ChunkFailed',
      cause: 'chunk 4: too many rejects',
    });
  });

  test('reads the status reason and exit code of a failed Batch job description', () => {
    const cause = JSON.stringify({ JobId: 'j', Status: 'FAILED', StatusReason: 'Essential container in task exited', Attempts: [{ Container: { ExitCode: 1 } }] });
    expect(describeFailure(chunk, { Error: 'States.TaskFailed', Cause: cause }, false).cause).toBe('Essential container in task exited; exit code 1');
  });

  test('keeps a plain-text cause, cut to 500 characters', () => {
    expect(describeFailure(chunk, { Error: 'States.Timeout', Cause: 'x'.repeat(600) }, false).cause).toBe(`${'x'.repeat(500)}...`);
  });

  test('names a chunk with a marker but no readable result', () => {
    expect(describeFailure(chunk, undefined, true)).toMatchObject({ error: 'ResultMissing', cause: expect.stringContaining('runs/r/chunks/4.json') });
  });

  test('names a chunk that never reported', () => {
    expect(describeFailure(chunk, undefined, false)).toMatchObject({ error: 'NotFinished' });
  });
});

describe('forEachInOrder (the aggregate step reads chunk results ahead and merges them in order)', () => {
  /** Reads that finish in an order of their own (later items first), recording what was started and used. */
  function harness(n: number, fail?: number) {
    const events: string[] = [];
    let held = 0;
    let maxHeld = 0;
    const read = (i: number): Promise<number> => {
      events.push(`read ${i}`);
      held++;
      maxHeld = Math.max(maxHeld, held);
      return new Promise((resolve, reject) => setTimeout(() => (i === fail ? reject(new Error(`read ${i} failed`)) : resolve(i * 10)), (n - i) * 2));
    };
    const use = (v: number, i: number): void => {
      held--;
      events.push(`use ${i}=${v}`);
    };
    return { events, read, use, maxHeld: () => maxHeld };
  }

  test('uses every value in item order and never holds more than the window', async () => {
    const items = Array.from({ length: 20 }, (_, i) => i);
    const h = harness(20);
    await forEachInOrder(items, h.read, 3, h.use);
    expect(h.events.filter((e) => e.startsWith('use'))).toEqual(items.map((i) => `use ${i}=${i * 10}`));
    expect(h.maxHeld()).toBe(3);
    // Item i + 3 is read only after item i was used.
    for (let i = 0; i + 3 < 20; i++) expect(h.events.indexOf(`read ${i + 3}`)).toBeGreaterThan(h.events.indexOf(`use ${i}=${i * 10}`));
  });

  test('a failed read is thrown at its turn, after the values before it were used, with no unhandled rejection', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown): void => {
      unhandled.push(reason);
    };
    process.on('unhandledRejection', onUnhandled);
    try {
      const h = harness(10, 4);
      await expect(forEachInOrder(Array.from({ length: 10 }, (_, i) => i), h.read, 8, h.use)).rejects.toThrow('read 4 failed');
      expect(h.events.filter((e) => e.startsWith('use'))).toEqual(['use 0=0', 'use 1=10', 'use 2=20', 'use 3=30']);
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  test('an error of `use` stops the loop and is thrown', async () => {
    const h = harness(5);
    const use = (v: number, i: number): void => {
      if (i === 2) throw new Error('merge refused item 2');
      h.use(v, i);
    };
    await expect(forEachInOrder([0, 1, 2, 3, 4], h.read, 2, use)).rejects.toThrow('merge refused item 2');
    expect(h.events).not.toContain('read 4');
  });

  test('no items: nothing is read', async () => {
    const h = harness(0);
    await forEachInOrder([], h.read, 8, h.use);
    expect(h.events).toEqual([]);
  });
});
