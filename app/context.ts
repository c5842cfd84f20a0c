import type { HaPolicyInput } from '../core/policy';
import type { Hasher } from './crypto';
import type { Ports } from './ports';

/** What every use case receives: the ports, the hasher and the deployment's default policy. */
export interface AppContext {
  readonly ports: Ports;
  readonly hasher: Hasher;
  /** The deployment's default policy; a cluster's overrides are spread over it. */
  readonly defaults: HaPolicyInput;
}
