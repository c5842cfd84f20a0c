import { App } from 'aws-cdk-lib';
import { readConfig } from './config';
import { HaloStack } from './halo-stack';
import { addNagChecks } from './nag';

/** CDK entry point (cdk.json `app`): one stack, settings from context, cdk-nag on every synth. */
const app = new App();
new HaloStack(app, 'Halo', {
  description: 'Halo: serverless HA control plane for on-prem hypervisor hosts',
  config: readConfig(app.node),
});
addNagChecks(app);
app.synth();
