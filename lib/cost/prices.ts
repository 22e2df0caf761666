/**
 * List prices the cost estimate uses: one region, one date, each with the public page it comes from.
 * They are planning figures, not a bill: check the pages before a decision that depends on a cent.
 * Spot prices move hourly; the Spot figures below are a stated assumption (see `spotDiscount`).
 */
export const PRICE_TABLE = {
  region: 'us-east-1',
  currency: 'USD',
  /** When the figures were read off the pages below. */
  asOf: '2026-03',
  hoursPerMonth: 730,
  vpc: {
    /** Interface endpoint, per endpoint per AZ per hour. */
    interfaceEndpointHour: 0.01,
    /** Interface endpoint data processed, per GB (first PB). */
    interfaceEndpointGb: 0.01,
    /** NAT gateway, per gateway per hour. */
    natGatewayHour: 0.045,
    /** NAT gateway data processed, per GB. */
    natGatewayGb: 0.045,
    /** A public IPv4 address (the NAT gateway's Elastic IP), per hour. */
    publicIpv4Hour: 0.005,
    sources: [
      'https://aws.amazon.com/privatelink/pricing/',
      'https://aws.amazon.com/vpc/pricing/',
    ],
  },
  cloudwatch: {
    /** Standard-resolution alarm, per metric in the alarm per month. */
    alarmMetricMonth: 0.1,
    /** Dashboard per month (the first 3 of an account are free; not applied here). */
    dashboardMonth: 3,
    /** Log ingestion per GB (standard class). */
    logIngestionGb: 0.5,
    /** Log storage per GB-month (compressed). */
    logStorageGbMonth: 0.03,
    sources: ['https://aws.amazon.com/cloudwatch/pricing/'],
  },
  kms: {
    /** Customer managed key per month. */
    keyMonth: 1,
    sources: ['https://aws.amazon.com/kms/pricing/'],
  },
  secretsManager: {
    secretMonth: 0.4,
    sources: ['https://aws.amazon.com/secrets-manager/pricing/'],
  },
  waf: {
    webAclMonth: 5,
    ruleMonth: 1,
    sources: ['https://aws.amazon.com/waf/pricing/'],
  },
  lambda: {
    /** Per million requests. */
    requestMillion: 0.2,
    /** Per GB-second, x86_64 / arm64. */
    gbSecondX86: 0.0000166667,
    gbSecondArm: 0.0000133334,
    sources: ['https://aws.amazon.com/lambda/pricing/'],
  },
  stepFunctions: {
    /** Standard workflows, per 1,000 state transitions. */
    transitionThousand: 0.025,
    sources: ['https://aws.amazon.com/step-functions/pricing/'],
  },
  s3: {
    storageGbMonth: 0.023,
    putThousand: 0.005,
    getThousand: 0.0004,
    sources: ['https://aws.amazon.com/s3/pricing/'],
  },
  fargate: {
    /** Linux per vCPU-hour and per GB-hour; billed per second with a one-minute minimum. */
    x86: { vcpuHour: 0.04048, gbHour: 0.004445 },
    arm: { vcpuHour: 0.03238, gbHour: 0.00356 },
    /** Fargate Spot: "up to 70 % off"; this estimate assumes the full 70 %. */
    spotDiscount: 0.7,
    minimumSeconds: 60,
    sources: ['https://aws.amazon.com/fargate/pricing/'],
  },
  ec2: {
    /**
     * On-Demand Linux prices of the `.large` size (2 vCPUs) of the families the platform's presets use,
     * per vCPU-hour, with the memory each vCPU comes with. Batch on EC2 bills the instance, per second.
     */
    families: [
      { family: 'c6i', gibPerVcpu: 2, vcpuHour: 0.0425 },
      { family: 'm6i', gibPerVcpu: 4, vcpuHour: 0.048 },
      { family: 'r6i', gibPerVcpu: 8, vcpuHour: 0.063 },
    ],
    /**
     * Assumed Spot discount against On-Demand (the Spot Instance Advisor shows 60-70 % for these families
     * in us-east-1; it changes hourly). A planning figure, not a quote.
     */
    spotDiscount: 0.65,
    sources: ['https://aws.amazon.com/ec2/pricing/on-demand/', 'https://aws.amazon.com/ec2/spot/instance-advisor/'],
  },
} as const;

export type PriceTable = typeof PRICE_TABLE;
