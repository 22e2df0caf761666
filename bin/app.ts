#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { addComplianceChecks, addPlatformStacks } from '../lib/stacks/platform-app';
import { stageConfig } from '../lib/stacks/stage-config';

// Wiring only: read the stage once (`cdk synth -c stage=prod`) and hand typed settings down.
const app = new App();
addPlatformStacks(app, stageConfig(app.node.tryGetContext('stage')));
addComplianceChecks(app);
