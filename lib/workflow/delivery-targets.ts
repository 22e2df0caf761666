import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as events from 'aws-cdk-lib/aws-events';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { IConstruct } from 'constructs';
import { propError } from '../common/validation';

/**
 * Version of the run message every target receives (the aggregator's RunSummary, `schemaVersion`);
 * bumped on any incompatible change. The runtime side is lambda/aggregate/aggregate.ts (a test checks the two agree).
 */
export const DELIVERY_MESSAGE_SCHEMA_VERSION = 1;

/** The summary goes to an SQS queue (message body = the run message). */
export interface SqsDeliveryTarget {
  readonly type: 'sqs';
  /** @default - the workflow's own summary queue (SSE, SSL only, with a dead-letter queue) */
  readonly queue?: sqs.IQueue;
}

/** The summary goes to EventBridge (detail = the run message; source and detail-type: RUN_EVENT_SOURCE / RUN_EVENT_DETAIL_TYPE). */
export interface EventBridgeDeliveryTarget {
  readonly type: 'eventbridge';
  /** @default - the account's default event bus */
  readonly eventBus?: events.IEventBus;
}

/**
 * The summary goes to a topic of an Amazon MSK cluster with IAM access control (SASL/OAUTHBEARER over TLS),
 * from a Lambda in the cluster's VPC: idempotent producer, acks from all in-sync replicas, key = run id.
 */
export interface KafkaDeliveryTarget {
  readonly type: 'kafka';
  /** ARN of the MSK cluster (`arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid>`); the IAM policy is scoped to it and its topic. */
  readonly clusterArn: string;
  /** The cluster's IAM bootstrap brokers, `host:9098,...` (`aws kafka get-bootstrap-brokers` -> BootstrapBrokerStringSaslIam). */
  readonly bootstrapBrokers: string;
  /** Topic the run messages go to (must exist: the producer does not create topics). */
  readonly topic: string;
  /** VPC of the cluster; the delivery Lambda runs in it. */
  readonly vpc: ec2.IVpc;
  /** @default - the VPC's private subnets */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /** Security groups the brokers admit on 9098. @default - a new security group (add it to the brokers' ingress) */
  readonly securityGroups?: ec2.ISecurityGroup[];
}

export type DeliveryTarget = SqsDeliveryTarget | EventBridgeDeliveryTarget | KafkaDeliveryTarget;

export const DELIVERY_TARGET_TYPES = ['sqs', 'eventbridge', 'kafka'] as const;
export const MAX_DELIVERY_TARGETS = 10;

/** Helpers that build the target objects. */
export const DeliveryTargets = {
  sqs: (queue?: sqs.IQueue): SqsDeliveryTarget => ({ type: 'sqs', queue }),
  eventBridge: (eventBus?: events.IEventBus): EventBridgeDeliveryTarget => ({ type: 'eventbridge', eventBus }),
  kafka: (props: Omit<KafkaDeliveryTarget, 'type'>): KafkaDeliveryTarget => ({ type: 'kafka', ...props }),
};

const CLUSTER_ARN = /^arn:aws[a-z-]*:kafka:[a-z0-9-]+:\d{12}:cluster\/([A-Za-z0-9-]{1,64})\/([0-9a-f-]+-\d+)$/;
const BROKER = /^[A-Za-z0-9.-]+:\d{1,5}$/;
const TOPIC = /^[A-Za-z0-9._-]{1,249}$/;

/** `arn:...:cluster/<name>/<uuid>` -> `arn:...:topic/<name>/<uuid>/<topic>` (the resource of kafka-cluster:WriteData). */
export function mskTopicArn(clusterArn: string, topic: string): string {
  return `${clusterArn.replace(':cluster/', ':topic/')}/${topic}`;
}

/**
 * Checks the list at construction: at least one target, at most MAX_DELIVERY_TARGETS, known types, no queue,
 * bus or Kafka topic twice, and well-formed Kafka settings. Errors name `deliveryTargets[i].field`, the value
 * and what is allowed.
 */
export function validateDeliveryTargets(scope: IConstruct, targets: readonly DeliveryTarget[]): void {
  if (!Array.isArray(targets) || targets.length === 0 || targets.length > MAX_DELIVERY_TARGETS) {
    throw propError(scope, 'deliveryTargets', Array.isArray(targets) ? `${targets.length} targets` : targets,
      `1 to ${MAX_DELIVERY_TARGETS} targets of type ${DELIVERY_TARGET_TYPES.join(', ')}`);
  }
  const seen = new Map<unknown, number>();
  const once = (i: number, field: string, key: unknown, shown: unknown): void => {
    const first = seen.get(key);
    if (first !== undefined) throw propError(scope, `deliveryTargets[${i}].${field}`, shown, `a ${field} not already used by deliveryTargets[${first}]`, 'is listed twice');
    seen.set(key, i);
  };
  targets.forEach((t, i) => {
    const type = (t as { type?: unknown } | undefined)?.type;
    switch (type) {
      case 'sqs':
        once(i, 'queue', (t as SqsDeliveryTarget).queue ?? 'sqs:default', (t as SqsDeliveryTarget).queue?.node.path ?? 'the workflow\'s summary queue');
        break;
      case 'eventbridge':
        once(i, 'eventBus', (t as EventBridgeDeliveryTarget).eventBus ?? 'eventbridge:default', (t as EventBridgeDeliveryTarget).eventBus?.node.path ?? 'the default bus');
        break;
      case 'kafka': {
        const k = t as KafkaDeliveryTarget;
        if (typeof k.clusterArn !== 'string' || Token.isUnresolved(k.clusterArn) || !CLUSTER_ARN.test(k.clusterArn)) {
          throw propError(scope, `deliveryTargets[${i}].clusterArn`, k.clusterArn, 'a literal MSK cluster ARN arn:aws:kafka:<region>:<account>:cluster/<name>/<uuid> (the IAM policy is scoped to it)');
        }
        const brokers = typeof k.bootstrapBrokers === 'string' ? k.bootstrapBrokers.split(',').map((b) => b.trim()) : [];
        if (Token.isUnresolved(k.bootstrapBrokers) ? false : brokers.length === 0 || brokers.some((b) => !BROKER.test(b))) {
          throw propError(scope, `deliveryTargets[${i}].bootstrapBrokers`, k.bootstrapBrokers, 'comma-separated host:port (BootstrapBrokerStringSaslIam, port 9098)');
        }
        if (typeof k.topic !== 'string' || !TOPIC.test(k.topic)) {
          throw propError(scope, `deliveryTargets[${i}].topic`, k.topic, '1-249 characters of A-Z a-z 0-9 . _ -');
        }
        if (!k.vpc) throw propError(scope, `deliveryTargets[${i}].vpc`, k.vpc, 'the VPC of the MSK cluster (the delivery Lambda runs in it)', 'is missing');
        once(i, 'topic', `kafka:${k.clusterArn}/${k.topic}`, k.topic);
        break;
      }
      default:
        throw propError(scope, `deliveryTargets[${i}].type`, type, DELIVERY_TARGET_TYPES.join(', '), 'is not a delivery target type');
    }
  });
}
