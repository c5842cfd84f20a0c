import { FenceAgentDevice } from '../adapters/fence-agent-fence';
import { IpmitoolFenceDevice } from '../adapters/ipmitool-fence';
import { ConfigError } from '../config/config-file';
import type { LevelSettings } from '../config/relay-config';
import type { FenceDevice } from '../ports';
import type { FenceConfig, FenceLevel } from './config';

/** The production device of one configured fence level: ipmitool, or a fence agent. */
export function fenceDevice(level: LevelSettings): FenceDevice {
  if (level.driver === 'ipmitool') {
    return new IpmitoolFenceDevice({
      address: level.address,
      username: level.username,
      password: level.password,
      ...(level.port === undefined ? {} : { port: level.port }),
      ...(level.cipherSuite === undefined ? {} : { cipherSuite: level.cipherSuite }),
      ...(level.privilege === undefined ? {} : { privilege: level.privilege }),
      ...(level.ipmiTimeoutS === undefined ? {} : { timeoutS: level.ipmiTimeoutS }),
      ...(level.ipmiRetries === undefined ? {} : { retries: level.ipmiRetries }),
    });
  }
  return new FenceAgentDevice({
    agent: level.agent,
    options: level.options,
    ...(level.callTimeoutMs === undefined ? {} : { callTimeoutMs: level.callTimeoutMs }),
  });
}

/**
 * Every configured host's fence levels, as the relay runs them. A level its driver refuses (an address
 * that ipmitool would read as an option, say) is a configuration error naming the level.
 */
export function fenceConfig(hosts: Readonly<Record<string, readonly LevelSettings[]>>): FenceConfig {
  const fence: Record<string, FenceLevel[]> = {};
  for (const [hostId, levels] of Object.entries(hosts)) {
    fence[hostId] = levels.map((level, i) => {
      let device: FenceDevice;
      try {
        device = fenceDevice(level);
      } catch (error) {
        throw new ConfigError(
          `hosts.${hostId}.fence.${i}: ${error instanceof Error ? error.message : String(error)}`,
        );
      }
      return { device, ...(level.timeoutMs === undefined ? {} : { timeoutMs: level.timeoutMs }) };
    });
  }
  return fence;
}
