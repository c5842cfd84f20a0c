import { STEP_FUNCTIONS_LIMITS } from '../local/workflow-limits';
import { largeHostFailover } from './large-host';
import type { ReportSuite, Table } from './report-suite';

/**
 * Step Functions' limits for the largest host: the failover of one host of 500 HA VMs through the
 * synthesized definition (bench/large-host.ts, virtual time), its largest state payload and the history
 * events AWS would record (local/workflow-limits.ts), with every start working and with every start failing.
 */

const VMS = 500;
const kb = (bytes: number): string => (bytes / 1024).toFixed(1);

async function report(): Promise<readonly Table[]> {
  const cases = [
    { name: 'every start works', failedStartsPerVm: 0 as const },
    { name: 'every start fails once, then works', failedStartsPerVm: 1 as const },
    { name: 'every start fails (left to VM-level HA)', failedStartsPerVm: 2 as const },
  ];
  const rows = [];
  for (const c of cases) {
    const run = await largeHostFailover({ vms: VMS, failedStartsPerVm: c.failedStartsPerVm });
    const usage = run.execution.usage;
    const ok =
      run.execution.status === 'succeeded' &&
      usage.largestPayloadBytes <= STEP_FUNCTIONS_LIMITS.statePayloadBytes &&
      usage.historyEvents <= STEP_FUNCTIONS_LIMITS.historyEvents;
    rows.push({
      case: c.name,
      execution: run.execution.status,
      incident: run.incident.outcome,
      'VMs running': run.running,
      'largest state KB': kb(usage.largestPayloadBytes),
      'at state': usage.largestPayloadState ?? '-',
      'history events': usage.historyEvents,
      'Map concurrency': Object.entries(run.mapConcurrency)
        .map(([name, n]) => `${name} ${n}`)
        .join(', '),
      'failover s (virtual)': (run.failoverMs / 1000).toFixed(0),
      limits: `≤ ${STEP_FUNCTIONS_LIMITS.statePayloadBytes / 1024} KB, ≤ ${STEP_FUNCTIONS_LIMITS.historyEvents.toLocaleString('en-US')} events, ≤ ${STEP_FUNCTIONS_LIMITS.inlineMapConcurrency}`,
      result: ok ? 'PASS' : 'MISS',
    });
  }
  return [
    {
      title: `Step Functions limits: a host of ${VMS} HA VMs fails over (virtual time, production timing)`,
      rows,
      footnote:
        'The synthesized definition on aws-local-stepfunctions, on the virtual control plane; a scripted relay answers every command with its next report.' +
        ' Payload: the largest input or output of any state, as UTF-8 JSON. History: the runner’s log mapped to the events AWS records (an upper bound).' +
        ' Before this change the same failover broke 256 KiB at StartPriorityWaves (344 KB: every iteration’s whole state in the Map result).',
    },
  ];
}

/** The workflow-limits suite, registered in bench/run.ts. */
export const workflowLimitsSuite: ReportSuite = {
  title: `Workflow limits (a host of ${VMS} HA VMs)`,
  report,
};
