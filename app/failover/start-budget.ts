/**
 * How many start attempts each VM of a failover gets, so that the execution stays within Step Functions'
 * 25,000 history events however many of its starts fail. A VM's iteration of StartWave costs about 14
 * events when its first start works; every start that fails and is tried on the next host adds
 * PER_RETRY_EVENTS (StartVm's failure, ReleaseCapacity, PickNextHost, StartVm again); a VM whose every
 * attempt fails costs PER_VM_WORST_EVENTS plus that per retry (its last failure ends in ReleaseCapacity,
 * PickNextHost's refusal and VmUnplaced). The rest of the execution (suspicion, fencing with its retries,
 * the operator, Close) stays under FIXED_EVENTS. Measured on the local runner's log mapped to AWS's history
 * (local/workflow-limits.ts); test/local/workflow-limits.test.ts fails a host of 500 HA VMs with every
 * start failing and holds it under the limit.
 *
 * A host of up to about 350 HA VMs keeps the policy's three attempts, up to 500 get two, more get one:
 * a VM left down by that goes to VM-level HA's retry list when the incident closes (app/recovery), which
 * retries it outside the execution. Limit: from about 880 HA VMs on one host, an incident in which every
 * start fails would pass 25,000 events even with one attempt each (14 when they work).
 */

/** Events of a VM whose every start attempt fails, with one attempt (upper bound). */
export const PER_VM_WORST_EVENTS = 28;
/** Events each failed start adds that is tried again on another host. */
export const PER_RETRY_EVENTS = 19;
/** Everything else of an execution, with room for fence retries and the operator's wait. */
export const FIXED_EVENTS = 400;
/** What a failover plans to use at most of Step Functions' 25,000 events: the rest is margin. */
export const HISTORY_BUDGET_EVENTS = 24_000;

/** Start attempts per VM for a failover of `vms` VMs: the policy's, or fewer to fit the history budget. */
export function startAttemptsFor(vms: number, policyAttempts: number): number {
  if (vms <= 0) return policyAttempts;
  const perVm = (HISTORY_BUDGET_EVENTS - FIXED_EVENTS) / vms;
  const retries = Math.floor((perVm - PER_VM_WORST_EVENTS) / PER_RETRY_EVENTS);
  return Math.max(1, Math.min(policyAttempts, retries + 1));
}
