import { describeFailure } from '../../../lambda/aggregate/aggregate';
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
