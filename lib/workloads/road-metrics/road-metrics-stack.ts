import { Duration, RemovalPolicy, Stack, StackProps, TimeZone, Validations } from 'aws-cdk-lib';
import * as batch from 'aws-cdk-lib/aws-batch';
import * as budgets from 'aws-cdk-lib/aws-budgets';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as rds from 'aws-cdk-lib/aws-rds';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as scheduler from 'aws-cdk-lib/aws-scheduler';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { propError } from '../../common/validation';
import { ScheduledJob } from '../../jobs/scheduled-job';
import { WorkerImage } from '../../jobs/worker-image';
import { WorkerJobDefinition } from '../../jobs/worker-job-definition';
import { acknowledgeWildcardResource } from '../../monitoring/nag';

export const DEFAULT_ROAD_METRICS_RESULTS_PREFIX = 'results/road-defects';
export const DEFAULT_AURORA_MAX_ACU = 4;
export const POSTGRES_PORT = 5432;
/**
 * `retention-days` of the daily results, rejects, dashboards and latest pointers: longer than the
 * 30-day trend the dashboard reads back, whatever the stage's default (dev keeps 7 days), and one of
 * the staging buckets' rule values.
 */
export const ROAD_METRICS_RETENTION_DAYS = 90;
/** The RDS CA bundle the worker image carries (containers/worker/Dockerfile); TLS is verified against it. */
export const RDS_CA_FILE = '/app/rds-global-bundle.pem';

/** The road-defects database: one you already run, or an Aurora PostgreSQL Serverless v2 cluster made here. */
export type RoadMetricsDatabase =
  | {
      readonly kind: 'existing';
      /** Security group of the database; the stack adds ONE ingress rule: PostgreSQL from the workers. */
      readonly securityGroup: ec2.ISecurityGroup;
      /** RDS-format secret (host, port, username, password, dbname) the job reads at start. */
      readonly secret: secretsmanager.ISecret;
      /** @default 5432 */
      readonly port?: number;
    }
  | {
      readonly kind: 'aurora';
      /** Serverless v2 capacity; 0 lets the cluster pause when idle (Aurora PostgreSQL 15.7+). @default 0 */
      readonly minCapacity?: number;
      /** @default 4 */
      readonly maxCapacity?: number;
    };

export interface RoadMetricsStackProps extends StackProps {
  /** Stage name, for names, tags and the budget's cost filter. */
  readonly stage: string;
  /** The platform's VPC, subnets and the security group of its Batch workers. */
  readonly vpc: ec2.IVpc;
  readonly vpcSubnets: ec2.SubnetSelection;
  readonly workerSecurityGroup: ec2.ISecurityGroup;
  /** The platform's EC2 job queue the nightly job is submitted to. */
  readonly jobQueue: batch.IJobQueue;
  /** The platform's output bucket: daily results, rejects, trend and the dashboard live under `resultsPrefix`. */
  readonly outputBucket: s3.IBucket;
  readonly database: RoadMetricsDatabase;
  /** Monthly spend of the stage (USD) the budget alarms on: 80% actual, 100% forecast. */
  readonly monthlyBudgetUsd: number;
  /**
   * Cron of the nightly run (Europe/Berlin); it processes yesterday (UTC) relative to the scheduled time.
   * @default 02:30 every day
   */
  readonly cron?: { readonly minute: string; readonly hour: string };
  /** @default 'results/road-defects' */
  readonly resultsPrefix?: string;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Removal policy of the Aurora cluster; also of the worker image repository (RETAIN keeps it, SNAPSHOT
   * or DESTROY delete it with its images).
   * @default RemovalPolicy.SNAPSHOT
   */
  readonly removalPolicy?: RemovalPolicy;
  /**
   * Tagged images the worker image repository keeps.
   * @default 10
   */
  readonly keptImages?: number;
}

/**
 * `RoadMetrics-<stage>`: the road-defect statistics of one day, every night, from PostgreSQL back into
 * PostgreSQL and into dated S3 results the dashboard (`batchctl report`) renders. Consumes the platform
 * stack's VPC, worker security group, queue and output bucket; adds only what the workload needs: a
 * job definition running `road-metrics.js`, the schedule, database access (an existing database or an
 * Aurora Serverless v2 cluster), a Secrets Manager interface endpoint (no NAT), and a budget alarm.
 */
export class RoadMetricsStack extends Stack {
  public readonly jobDefinition: WorkerJobDefinition;
  /** The worker image the job runs, in this stack's own ECR repository. */
  public readonly workerImage: WorkerImage;
  public readonly schedule: ScheduledJob;
  public readonly databaseSecret: secretsmanager.ISecret;
  public readonly databaseSecurityGroup: ec2.ISecurityGroup;
  /** Set when `database.kind` is 'aurora'. */
  public readonly cluster?: rds.DatabaseCluster;
  public readonly secretsManagerEndpoint: ec2.InterfaceVpcEndpoint;
  public readonly budget: budgets.CfnBudget;
  public readonly budgetTopic: sns.Topic;

  constructor(scope: Construct, id: string, props: RoadMetricsStackProps) {
    super(scope, id, props);
    if (!(props.monthlyBudgetUsd > 0)) throw propError(this, 'monthlyBudgetUsd', props.monthlyBudgetUsd, 'a number > 0 (USD)');
    const prefix = props.resultsPrefix ?? DEFAULT_ROAD_METRICS_RESULTS_PREFIX;

    let port = POSTGRES_PORT;
    if (props.database.kind === 'existing') {
      this.databaseSecret = props.database.secret;
      this.databaseSecurityGroup = props.database.securityGroup;
      port = props.database.port ?? POSTGRES_PORT;
    } else {
      const minCapacity = props.database.minCapacity ?? 0;
      const maxCapacity = props.database.maxCapacity ?? DEFAULT_AURORA_MAX_ACU;
      if (!(minCapacity >= 0 && maxCapacity >= Math.max(1, minCapacity) && maxCapacity <= 256)) {
        throw propError(this, 'database.maxCapacity', maxCapacity, `a number in [max(1, minCapacity ${minCapacity}), 256] ACU`);
      }
      const sg = new ec2.SecurityGroup(this, 'DatabaseSecurityGroup', {
        vpc: props.vpc,
        description: 'Road-metrics Aurora PostgreSQL: PostgreSQL from the Batch workers only',
        allowAllOutbound: false,
      });
      this.cluster = new rds.DatabaseCluster(this, 'Database', {
        engine: rds.DatabaseClusterEngine.auroraPostgres({ version: rds.AuroraPostgresEngineVersion.VER_15_10 }),
        writer: rds.ClusterInstance.serverlessV2('Writer'),
        serverlessV2MinCapacity: minCapacity,
        serverlessV2MaxCapacity: maxCapacity,
        vpc: props.vpc,
        vpcSubnets: props.vpcSubnets,
        securityGroups: [sg],
        defaultDatabaseName: 'roads',
        credentials: rds.Credentials.fromGeneratedSecret('road_metrics'),
        storageEncrypted: true,
        deletionProtection: props.removalPolicy === RemovalPolicy.RETAIN,
        removalPolicy: props.removalPolicy ?? RemovalPolicy.SNAPSHOT,
        iamAuthentication: true,
        backup: { retention: Duration.days(7) },
        parameters: { 'rds.force_ssl': '1' },
      });
      this.databaseSecret = this.cluster.secret!;
      this.databaseSecurityGroup = sg;
      Validations.of(this.cluster).acknowledge(
        { id: 'AwsSolutions-RDS11', reason: 'PostgreSQL keeps its default port: the database is reachable only from the worker security group in isolated subnets.' },
        { id: 'AwsSolutions-RDS10', reason: 'Deletion protection follows the stage: on where the removal policy is RETAIN (prod), off in dev so the stage can be torn down.' },
      );
      // cluster.secret is the secret's attachment; the finding sits on the secret itself.
      Validations.of(this.cluster.node.findChild('Secret')).acknowledge({
        id: 'AwsSolutions-SMG4',
        reason: 'Rotation needs a rotation Lambda with network access to the cluster and to Secrets Manager; not enabled yet (docs/workloads/road-metrics.md). The job reads the secret at every start, so enabling rotation later needs no change to the job.',
      });
    }
    // The one rule from the workers to the database, created in THIS stack also when the database's
    // security group belongs to someone else (addIngressRule would put it in the group's own stack).
    new ec2.CfnSecurityGroupIngress(this, 'DatabaseIngressFromWorkers', {
      groupId: this.databaseSecurityGroup.securityGroupId,
      sourceSecurityGroupId: props.workerSecurityGroup.securityGroupId,
      ipProtocol: 'tcp',
      fromPort: port,
      toPort: port,
      description: `PostgreSQL from the ${props.stage} Batch workers`,
    });

    // Secrets Manager without NAT: an interface endpoint the workers reach on 443.
    const endpointSg = new ec2.SecurityGroup(this, 'SecretsManagerEndpointSecurityGroup', {
      vpc: props.vpc,
      description: 'Secrets Manager endpoint: HTTPS from the Batch workers',
      allowAllOutbound: false,
    });
    endpointSg.addIngressRule(ec2.Peer.securityGroupId(props.workerSecurityGroup.securityGroupId), ec2.Port.tcp(443), 'HTTPS from the Batch workers');
    Validations.of(endpointSg).acknowledge({
      id: 'AwsSolutions-EC23',
      reason: "The only ingress rule's source is the platform's worker security group (a cross-stack reference cdk-nag cannot resolve), never a CIDR range.",
    });
    this.secretsManagerEndpoint = new ec2.InterfaceVpcEndpoint(this, 'SecretsManagerEndpoint', {
      vpc: props.vpc,
      service: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
      subnets: props.vpcSubnets,
      securityGroups: [endpointSg],
      privateDnsEnabled: true,
      // Not open to the whole VPC CIDR: only the rule above.
      open: false,
    });

    // The worker image in a repository of this stack (scan on push, lifecycle, immutable tags).
    this.workerImage = new WorkerImage(this, 'WorkerImage', {
      removalPolicy: props.removalPolicy === RemovalPolicy.RETAIN ? RemovalPolicy.RETAIN : RemovalPolicy.DESTROY,
      keptImages: props.keptImages,
    });
    this.jobDefinition = new WorkerJobDefinition(this, 'Job', {
      platform: 'EC2',
      workerImage: this.workerImage,
      command: ['node', '/app/road-metrics.js', 'run'],
      outputBucket: props.outputBucket,
      outputPrefix: `${prefix}/`,
      logRetention: props.logRetention,
      environment: {
        OUTPUT_S3_BUCKET: props.outputBucket.bucketName,
        RESULTS_PREFIX: prefix,
        DB_CREDENTIALS_ARN: this.databaseSecret.secretArn,
        DB_CA_FILE: RDS_CA_FILE,
        RETENTION_DAYS: String(ROAD_METRICS_RETENTION_DAYS),
      },
    });
    // The finding id names the resolved ARN, and the bucket (platform stack) resolves to its
    // Fn::ImportValue only after the prepare phase: so acknowledge at validation time.
    this.node.addValidation({
      validate: () => {
        acknowledgeWildcardResource(
          this.jobDefinition.jobRole,
          props.outputBucket.arnForObjects(`${prefix}/*`),
          'The job writes one dated result, its rejects, its dashboard page and the latest pointers per day under the road-metrics results prefix; the keys depend on the day processed.',
        );
        acknowledgeWildcardResource(
          this.jobDefinition.jobRole,
          props.outputBucket.arnForObjects(`${prefix}/daily/*`),
          'The published dashboard shows the trend of the last 30 days: the job reads those daily results back; the keys depend on the days.',
        );
        return [];
      },
    });
    this.databaseSecret.grantRead(this.jobDefinition.jobRole);
    // `latest.json` is read before it is moved (never backwards on a backfill); ListBucket on that one key
    // only, so that a missing pointer is a 404 and not a 403. The dashboard the job publishes
    // (`<prefix>/dashboard/`) is rendered from the daily results of the last 30 days: it lists and reads
    // `<prefix>/daily/`.
    this.jobDefinition.jobRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject'],
        resources: [props.outputBucket.arnForObjects(`${prefix}/latest.json`), props.outputBucket.arnForObjects(`${prefix}/daily/*`)],
      }),
    );
    this.jobDefinition.jobRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [props.outputBucket.bucketArn],
        conditions: { StringEquals: { 's3:prefix': [`${prefix}/latest.json`, `${prefix}/daily/`] } },
      }),
    );

    this.schedule = new ScheduledJob(this, 'Nightly', {
      jobQueue: props.jobQueue,
      jobDefinition: this.jobDefinition.jobDefinition,
      jobName: `road-metrics-${props.stage}`,
      schedule: scheduler.ScheduleExpression.cron({
        minute: props.cron?.minute ?? '30',
        hour: props.cron?.hour ?? '2',
        timeZone: TimeZone.EUROPE_BERLIN,
      }),
      // Scheduler fills in the run's scheduled time: the job processes the UTC day before it.
      environment: { RUN_AS_OF: '<aws.scheduler.scheduled-time>' },
      description: `Road-defect statistics of yesterday (${props.stage})`,
    });

    // Budget alarm for the stage's monthly spend (cost allocation tag `stage` must be activated).
    this.budgetTopic = new sns.Topic(this, 'BudgetTopic', { displayName: `cdk-batch-platform ${props.stage} budget`, enforceSSL: true });
    this.budgetTopic.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['sns:Publish'],
        principals: [new iam.ServicePrincipal('budgets.amazonaws.com')],
        resources: [this.budgetTopic.topicArn],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );
    Validations.of(this.budgetTopic).acknowledge({
      id: 'AwsSolutions-SNS2',
      reason: 'AWS Budgets cannot publish to a topic encrypted with the AWS-managed SNS key, and the message (a spend figure) does not justify a customer-managed key.',
    });
    const subscriber = { address: this.budgetTopic.topicArn, subscriptionType: 'SNS' };
    this.budget = new budgets.CfnBudget(this, 'MonthlyBudget', {
      budget: {
        budgetName: `cdk-batch-platform-${props.stage}-monthly`,
        budgetType: 'COST',
        timeUnit: 'MONTHLY',
        budgetLimit: { amount: props.monthlyBudgetUsd, unit: 'USD' },
        costFilters: { TagKeyValue: [`user:stage$${props.stage}`] },
      },
      notificationsWithSubscribers: [
        { notification: { notificationType: 'ACTUAL', comparisonOperator: 'GREATER_THAN', threshold: 80, thresholdType: 'PERCENTAGE' }, subscribers: [subscriber] },
        { notification: { notificationType: 'FORECASTED', comparisonOperator: 'GREATER_THAN', threshold: 100, thresholdType: 'PERCENTAGE' }, subscribers: [subscriber] },
      ],
    });
  }
}
