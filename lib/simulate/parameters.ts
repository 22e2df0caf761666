/**
 * The parameters of the chunked-run simulation, each with where it comes from. Figures AWS documents
 * are quotas or published guidance; the start-up and cold-start distributions are typical values
 * reported for these services and are stated as assumptions you can override on the command line.
 */
export interface Range {
  /** Lower and upper bound; the simulation draws uniformly between them (seeded). */
  readonly min: number;
  readonly max: number;
}

export interface SimulationParameters {
  /** Batch on EC2: time from SubmitJob to RUNNING when a new instance must be launched (instance boot, ECS agent, image pull). */
  readonly ec2ColdStartSeconds: Range;
  /** Batch on EC2: SubmitJob to RUNNING on an instance already running (scheduler cycle + container start, image cached). */
  readonly ec2WarmStartSeconds: Range;
  /** Batch on Fargate: SubmitJob to RUNNING (task provisioning + image pull); every task pays it. */
  readonly fargateStartSeconds: Range;
  /** Spot interruptions per instance-hour (Spot Instance Advisor "<5 %" per month band: 0.05 / 730). */
  readonly spotInterruptionsPerHour: number;
  /** Lambda cold start of the chunk function (Node.js 22, ~800 KB bundle), and how many invocations start cold. */
  readonly lambdaColdStartSeconds: Range;
  /** Lambda concurrent executions available to the run (account default quota 1,000). */
  readonly lambdaConcurrency: number;
  /** Lambda maximum duration: a chunk that would run longer is not routable to Lambda. */
  readonly lambdaTimeoutSeconds: number;
  /** Lambda memory of the chunk function (1,769 MB = 1 vCPU). */
  readonly lambdaMemoryMb: number;
  /** S3 GET throughput of one connection, MB/s (S3 performance guidelines: ~85-90 MB/s per request). */
  readonly s3MbPerSecondPerConnection: number;
  /** Step Functions Distributed Map: child executions at once (quota 10,000). */
  readonly mapMaxConcurrency: number;
  /** State transitions per chunk (child: route choice, task, mark done) and per run (validate, plan, map, aggregate, deliver). */
  readonly transitionsPerChunk: number;
  readonly transitionsPerRun: number;
  /** Planner and aggregation: seconds per run and per chunk (measured locally: planner ranged reads, merge). */
  readonly planSeconds: number;
  readonly aggregateSecondsPerChunk: number;
}

export const DEFAULT_PARAMETERS: SimulationParameters = {
  ec2ColdStartSeconds: { min: 60, max: 180 },
  ec2WarmStartSeconds: { min: 5, max: 20 },
  fargateStartSeconds: { min: 30, max: 75 },
  spotInterruptionsPerHour: 0.05 / 730,
  lambdaColdStartSeconds: { min: 0.3, max: 1.0 },
  lambdaConcurrency: 1000,
  lambdaTimeoutSeconds: 900,
  lambdaMemoryMb: 2048,
  s3MbPerSecondPerConnection: 85,
  mapMaxConcurrency: 10000,
  transitionsPerChunk: 4,
  transitionsPerRun: 8,
  planSeconds: 2,
  aggregateSecondsPerChunk: 0.05,
};

/** Where each default comes from (printed by `batchctl simulate --sources` and in docs/simulation.md). */
export const PARAMETER_SOURCES: Record<keyof SimulationParameters, string> = {
  ec2ColdStartSeconds: 'assumption: EC2 launch + ECS agent registration + image pull, typically 1-3 min (AWS Batch best practices: "jobs start within a few minutes" of scale-out)',
  ec2WarmStartSeconds: 'assumption: Batch scheduler cycle and container start on a running instance with the image cached',
  fargateStartSeconds: 'assumption: Fargate task provisioning and image pull, typically 30-75 s for a ~200 MB image',
  spotInterruptionsPerHour: 'Spot Instance Advisor frequency band "<5 %" per month for c5/c6i/m5/m6i in us-east-1 (0.05 / 730 h)',
  lambdaColdStartSeconds: 'assumption: Node.js cold start with an ~800 KB esbuild bundle, 0.3-1 s',
  lambdaConcurrency: 'Lambda quota: 1,000 concurrent executions per Region (default, raisable)',
  lambdaTimeoutSeconds: 'Lambda quota: 900 s maximum function timeout',
  lambdaMemoryMb: 'ChunkedProcessingWorkflow chunkFunctionMemorySize default (2,048 MB, a little over 1 vCPU)',
  s3MbPerSecondPerConnection: 'S3 performance guidelines: 85-90 MB/s per single GET connection',
  mapMaxConcurrency: 'Step Functions quota: Distributed Map runs up to 10,000 child workflow executions in parallel',
  transitionsPerChunk: 'the synthesized state machine: route choice, Lambda or Batch task, done marker per item',
  transitionsPerRun: 'the synthesized state machine: validate, plan, load manifest, map, aggregate, deliver',
  planSeconds: 'measured locally: the planner makes one ranged read of <= 64 KiB per chunk boundary',
  aggregateSecondsPerChunk: 'measured locally: merging one chunk result into the run result',
};
