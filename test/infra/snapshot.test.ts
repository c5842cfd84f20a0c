import { Template } from 'aws-cdk-lib/assertions';
import { expect, it } from 'vitest';
import { buildHaloApp } from './helpers';

/**
 * The template with what changes on every build normalised away: asset hashes (Lambda code S3 keys,
 * asset metadata) change with any handler edit, and the CDK analytics blob with the CDK version.
 */
function normalised(template: Record<string, unknown>): unknown {
  const text = JSON.stringify(template).replace(/[a-f0-9]{64}/g, '[asset-hash]');
  return JSON.parse(text, (key, value) => (key === 'CDKMetadata' ? undefined : value));
}

it('matches the snapshot (review the diff: it is the deployed infrastructure)', () => {
  const { stack } = buildHaloApp();
  expect(normalised(Template.fromStack(stack).toJSON())).toMatchSnapshot();
});
