import { describe, expect, it } from 'vitest';
import { networkDown } from './fakes';
import { BMC, CREDENTIAL, fenceCommand, SILENT_MS, startCommand, TestSite } from './site-harness';

/** Every value of the relay's configuration that must never leave the site. */
const SECRETS = [
  CREDENTIAL,
  CREDENTIAL.slice(CREDENTIAL.lastIndexOf('.') + 1),
  ...Object.values(BMC).flatMap((e) => [e.address, e.user, e.password]),
];

describe('relay reports carry no BMC configuration or credential', () => {
  it('even when the BMC and the agents put them in their error messages', async () => {
    // given BMCs whose errors name their address, user and password, and an agent that echoes one
    const site = await TestSite.open();
    site.uplink.nextReportInMs = 1000;
    await site.run(SILENT_MS);
    const h2 = BMC.h2;
    if (h2 === undefined) throw new Error('fixture lacks h2');
    site.bmc.script('h1', ['no-answer']);
    site.bmc.script('h2', ['on']);
    site.bmc.offFails.set(
      'h2',
      `ipmitool -I lanplus -H ${h2.address} -U ${h2.user} -P ${h2.password}: timeout`,
    );
    site.host('h1').hypervisor.startFails = `cannot reach ${h2.address} with ${h2.password}`;

    // when fences of h1 and h2 and a start on h1 all fail, part of it while the uplink is down
    const commands = [
      fenceCommand(site, 'h1', 4000),
      fenceCommand(site, 'h2', 4000),
      startCommand(site, 'h1', 'vm-9', 4000),
    ];
    site.uplink.commands = commands;
    await site.run(2000);
    site.uplink.failure = networkDown();
    await site.run(5000);
    site.uplink.failure = null;
    await site.run(5000);

    // then every result was reported...
    for (const command of commands) expect(site.resultsFor(command.commandId).length).toBeGreaterThan(0);
    const details = site.uplink.accepted.flatMap((r) => r.results.map((x) => x.detail ?? ''));
    expect(details.some((d) => d.includes('[redacted]'))).toBe(true);

    // ...and no report ever handed to the uplink, accepted or not, contains a configured secret
    expect(site.uplink.attempts.some((a) => !a.accepted)).toBe(true);
    for (const { report, credential } of site.uplink.attempts) {
      const wire = JSON.stringify(report);
      for (const secret of SECRETS) expect(wire).not.toContain(secret);
      // The credential travels only beside the report (the Authorization header).
      expect(credential).toBe(CREDENTIAL);
    }
  });
});
