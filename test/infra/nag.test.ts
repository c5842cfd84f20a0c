import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildHaloApp } from './helpers';

interface Acknowledgement {
  path: string;
  id: string;
  reason: string;
}

interface Finding {
  path: string;
  ruleId: string;
  acknowledged: boolean;
}

let synthError: unknown;
let acknowledgements: Acknowledgement[] = [];
const findings: Finding[] = [];

function acknowledgementsIn(root: IConstruct): Acknowledgement[] {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, string>).map(([id, reason]) => ({
          path: c.node.path,
          id,
          reason,
        })),
      ),
  );
}

/** Rule id as cdk-nag reports it (acknowledgements are stored as `Annotation::<id>`). */
const bareId = (id: string) => id.replace(/^[A-Za-z]+::/, '');

beforeAll(() => {
  const { app } = buildHaloApp();
  const checks = new AwsSolutionsChecks(app);
  // Record every non-compliant finding, acknowledged or not, to catch acknowledgements that no longer
  // match anything (stale suppressions hide the next real finding of the same id). isAcknowledged is
  // cdk-nag's private hook, called once per finding: if it disappears this test fails loudly.
  const hooks = checks as unknown as { isAcknowledged?: (node: IConstruct, ruleId: string) => boolean };
  const original = hooks.isAcknowledged;
  if (typeof original !== 'function')
    throw new Error('cdk-nag no longer has isAcknowledged: update this test');
  hooks.isAcknowledged = function (this: unknown, node: IConstruct, ruleId: string): boolean {
    const acknowledged = original.call(this, node, ruleId);
    findings.push({ path: node.node.path, ruleId, acknowledged });
    return acknowledged;
  };
  Validations.of(app).addPlugins(checks);
  try {
    app.synth();
  } catch (error) {
    synthError = error;
  }
  acknowledgements = acknowledgementsIn(app);
});

describe('cdk-nag AwsSolutionsChecks', () => {
  it('passes: synth reports no unacknowledged finding', () => {
    expect(synthError).toBeUndefined();
    expect(findings.filter((f) => !f.acknowledged)).toEqual([]);
  });

  it('checked the stack (findings were seen and acknowledged)', () => {
    expect(findings.length).toBeGreaterThan(0);
  });

  it('gives every acknowledgement a specific reason', () => {
    expect(acknowledgements.length).toBeGreaterThan(0);
    for (const a of acknowledgements) {
      expect(a.reason.trim().length, `${a.path} ${a.id}`).toBeGreaterThanOrEqual(40);
    }
  });

  it('has no stale acknowledgement: each one matches a finding on its construct or below', () => {
    for (const a of acknowledgements) {
      const matched = findings.some(
        (f) => f.ruleId === bareId(a.id) && (f.path === a.path || f.path.startsWith(`${a.path}/`)),
      );
      expect(matched, `${a.path} ${a.id}`).toBe(true);
    }
  });

  it('acknowledges only the expected rules', () => {
    const ids = [...new Set(acknowledgements.map((a) => bareId(a.id).replace(/\[.*$/, '')))].sort();
    expect(ids).toEqual(['AwsSolutions-APIG4', 'AwsSolutions-IAM5', 'AwsSolutions-L1', 'AwsSolutions-SF1']);
  });
});
