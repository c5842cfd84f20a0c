import * as z from 'zod';
import { IdSchema, RefSchema } from './relay-protocol';

/**
 * Contract between the failover state machine (infra/workflow) and the `failover-steps` Lambda.
 *
 * One Lambda serves every step, routed by `step`: an incident runs on one warm function, so the
 * failover pays at most one cold start. Every step is idempotent: Step Functions may deliver a task twice.
 */

/** State names, as operators read them in the Step Functions console. */
export const STATE = {
  /**
   * Choice state the definition starts at: an execution that carries an operator's decision resumes a
   * failover whose wait had ended (a late confirm-power-off); any other starts at Suspicion.
   */
  StartOrResume: 'StartOrResume?',
  /** Parallel state: Suspect beside WaitBeforeConfirm. */
  Suspicion: 'Suspicion',
  Suspect: 'Suspect',
  WaitBeforeConfirm: 'WaitBeforeConfirm',
  ConfirmSilence: 'ConfirmSilence',
  StillSilent: 'StillSilent?',
  FalseAlarm: 'FalseAlarm',
  CheckFencingPolicy: 'CheckFencingPolicy',
  FenceOrSuppress: 'FenceOrSuppress?',
  FencingSuppressed: 'FencingSuppressed',
  Fence: 'Fence',
  VerifyPowerOff: 'VerifyPowerOff',
  FenceFailed: 'FenceFailed',
  AwaitOperator: 'AwaitOperator',
  OperatorOutcome: 'OperatorOutcome?',
  HostCameBack: 'HostCameBack',
  /** Pass state: turns the operator's decision into the `confirmation` MarkFenced records. */
  OperatorConfirmedOff: 'OperatorConfirmedOff',
  /**
   * Task after AwaitOperator timed out: ends the wait unless a confirmation (or the host) came meanwhile.
   * The incident stays open: a confirmation after it resumes the failover in an execution of its own.
   */
  OperatorTimedOut: 'OperatorTimedOut',
  /** Fail state: no operator decision before operatorTimeoutSeconds; nothing was restarted yet. */
  OperatorNeverAnswered: 'OperatorNeverAnswered',
  /** Fail state: the operator decision is neither value we know; never read as a confirmation. */
  UnknownOperatorDecision: 'UnknownOperatorDecision',
  /**
   * Task: the host was heard again in a new boot before it was confirmed off. The boot that ran its VMs has
   * ended, so they restart without a fence (the new boot runs none of them).
   */
  HostRebooted: 'HostRebooted',
  MarkFenced: 'MarkFenced',
  PlanPlacement: 'PlanPlacement',
  StartPriorityWaves: 'StartPriorityWaves',
  StartWave: 'StartWave',
  StartVm: 'StartVm',
  VmStarted: 'VmStarted',
  ReleaseCapacity: 'ReleaseCapacity',
  PickNextHost: 'PickNextHost',
  VmUnplaced: 'VmUnplaced',
  StartUnconfirmed: 'StartUnconfirmed',
  Close: 'Close',
  /** Succeed state after Close. */
  IncidentClosed: 'IncidentClosed',
} as const;

/** Named errors thrown by steps or sent with SendTaskFailure; Retry/Catch match on these names. */
export const WORKFLOW_ERROR = {
  FenceNotConfirmed: 'FenceNotConfirmedError',
  FenceDeadlinePassed: 'FenceDeadlinePassedError',
  NoRelayAvailable: 'NoRelayAvailableError',
  VmStartFailed: 'VmStartFailedError',
  NoCapacity: 'NoCapacityError',
  StartAttemptsExhausted: 'StartAttemptsExhaustedError',
  /** Another host's incident took the VM over (its start went to that host, which fell silent). */
  VmHandedOver: 'VmHandedOverError',
  IncidentSuperseded: 'IncidentSupersededError',
  /** The host is heard in a new boot: the failover goes to HostRebooted instead of fencing. */
  HostRebooted: 'HostRebootedError',
  /** An optimistic-lock write lost a race (app/errors.ts); every Task retries it. */
  ConcurrentUpdate: 'ConcurrentUpdateError',
  /** Error of the OperatorNeverAnswered Fail state. */
  OperatorNeverAnswered: 'OperatorNeverAnsweredError',
  /** Error of the UnknownOperatorDecision Fail state. */
  UnknownOperatorDecision: 'UnknownOperatorDecisionError',
} as const;

const epochMs = z.number().int().nonnegative();
const seconds = z.number().int().positive();

/** Timings the state machine itself needs, in whole seconds (Step Functions' unit). */
export const WorkflowTimingSchema = z.strictObject({
  confirmSilenceSeconds: z.number().int().nonnegative(),
  fenceAttemptTimeoutSeconds: seconds,
  startTimeoutSeconds: seconds,
  operatorTimeoutSeconds: seconds,
});
export type WorkflowTiming = z.infer<typeof WorkflowTimingSchema>;

/** Execution input, written by ingest when every live relay reports a host silent. */
export const IncidentInputSchema = z.strictObject({
  incidentId: RefSchema,
  siteId: IdSchema,
  hostId: IdSchema,
  cluster: IdSchema,
  bootId: z.string().min(1),
  openedAt: epochMs,
  timing: WorkflowTimingSchema,
  /** What ingest saw: each live relay's view of the host when the incident opened. */
  evidence: z.strictObject({
    relays: z.array(z.strictObject({ relayId: IdSchema, lastHeardMsAgo: z.number().int().nonnegative() })),
    silentAfterMs: z.number().int().positive(),
    /**
     * Live relays that last heard the host but were overdue for their next report (it may have died with
     * the host), with how long ago they reported: their vote was ignored. Absent when there were none.
     */
    overdueRelays: z
      .array(z.strictObject({ relayId: IdSchema, reportAgeMs: z.number().int().nonnegative() }))
      .optional(),
    /**
     * Live relays whose last report did not list the host at all (never heard since they started): no
     * evidence of life, their vote was not counted either way. Absent when there were none.
     */
    unheardRelays: z.array(IdSchema).optional(),
  }),
});
export type IncidentInput = z.infer<typeof IncidentInputSchema>;

const incidentRef = { incidentId: RefSchema, siteId: IdSchema, hostId: IdSchema } as const;

/** Evidence-carrying outputs: each step's result lands in the execution state under its own key. */
export const ConfirmSilenceOutputSchema = z.strictObject({
  stillSilent: z.boolean(),
  detail: z.string(),
  relays: z.array(
    z.strictObject({ relayId: IdSchema, live: z.boolean(), lastHeardMsAgo: z.number().nullable() }),
  ),
});
export type ConfirmSilenceOutput = z.infer<typeof ConfirmSilenceOutputSchema>;

export const FencingPolicyOutputSchema = z.strictObject({
  action: z.enum(['fence', 'suppress']),
  reason: z.string(),
  detail: z.string(),
  evidence: z.record(z.string(), z.unknown()),
});
export type FencingPolicyOutput = z.infer<typeof FencingPolicyOutputSchema>;

/** What the relay's fence result resolves the Fence callback task with (SendTaskSuccess output). */
export const FenceResultSchema = z.strictObject({
  commandId: RefSchema,
  relayId: IdSchema,
  powerState: z.enum(['off', 'on', 'unknown']),
  /** The fence level that read the power back and its driver, when the relay said (relay protocol). */
  level: z.number().int().positive().optional(),
  driver: z.string().min(1).optional(),
  finishedAt: epochMs,
  detail: z.string().optional(),
});
export type FenceResult = z.infer<typeof FenceResultSchema>;

/**
 * What an operator's decision resolves AwaitOperator with; `no-answer` is OperatorTimedOut's when the wait
 * ended without one.
 */
export const OperatorDecisionSchema = z.strictObject({
  decision: z.enum(['confirmed-off', 'host-came-back', 'no-answer']),
  by: z.string(),
  at: epochMs,
});
export type OperatorDecision = z.infer<typeof OperatorDecisionSchema>;

/**
 * What an execution that resumes a failover carries beside `incident` (StartOrResume?): the operator's
 * confirmation that came after the first execution stopped waiting, or the host's new boot that came then.
 */
export const WorkflowResumeSchema = z.discriminatedUnion('resume', [
  z.strictObject({ resume: z.literal('operator-confirmed'), operator: OperatorDecisionSchema }),
  z.strictObject({ resume: z.literal('host-rebooted') }),
]);
export type WorkflowResume = z.infer<typeof WorkflowResumeSchema>;

export const PlannedVmSchema = z.strictObject({
  vmId: IdSchema,
  cpus: z.number().int().positive(),
  memoryMiB: z.number().int().positive(),
  priority: z.enum(['high', 'medium', 'low']),
  hostId: IdSchema,
  /**
   * Why that host: kept in the plan the timeline stores, left out of the execution's (workflowPlan), where
   * a host of 500 HA VMs would otherwise carry 60 KB of explanations through every wave.
   */
  reason: z.string().optional(),
});
export type PlannedVm = z.infer<typeof PlannedVmSchema>;

/**
 * A failover's placement plan. The timeline keeps it whole (the `placement-planned` event: every VM's host
 * and why, every unplaced VM's detail); the execution carries it without the explanations (workflowPlan), so
 * that the state stays far below Step Functions' 256 KiB for a host of 500 HA VMs and more.
 */
export const PlanOutputSchema = z.strictObject({
  waves: z.array(
    z.strictObject({ priority: z.enum(['high', 'medium', 'low']), vms: z.array(PlannedVmSchema) }),
  ),
  unplaced: z.array(
    z.strictObject({
      vmId: IdSchema,
      priority: z.string(),
      reason: z.string(),
      /** Which hosts turned it away and why: in the stored plan only, like a placed VM's reason. */
      detail: z.string().optional(),
    }),
  ),
  /**
   * HA VMs of the incident found running when the plan was made (started by hand, or by the host's new
   * boot): not started again, since that would run them twice. Absent from plans made before it was kept.
   */
  running: z.array(z.strictObject({ vmId: IdSchema, hostId: IdSchema })).optional(),
  /**
   * Start attempts each VM of this plan gets (first host, then the next best ones): the policy's
   * maxStartAttempts, fewer for a host of so many HA VMs that retries of every one of them would take the
   * execution past Step Functions' 25,000 history events (app/failover/start-budget.ts). A VM left down
   * goes to VM-level HA's retry list at Close. Set on the plan the execution carries; absent from stored
   * plans.
   */
  startAttempts: z.number().int().positive().optional(),
});
export type PlanOutput = z.infer<typeof PlanOutputSchema>;

/** The plan as the execution carries it: the stored plan without the per-VM explanations. */
export function workflowPlan(plan: PlanOutput, startAttempts: number): PlanOutput {
  return {
    startAttempts,
    waves: plan.waves.map((wave) => ({
      priority: wave.priority,
      vms: wave.vms.map((vm) => ({
        vmId: vm.vmId,
        cpus: vm.cpus,
        memoryMiB: vm.memoryMiB,
        priority: vm.priority,
        hostId: vm.hostId,
      })),
    })),
    unplaced: plan.unplaced.map((vm) => ({ vmId: vm.vmId, priority: vm.priority, reason: vm.reason })),
    ...(plan.running === undefined ? {} : { running: plan.running }),
  };
}

/**
 * One HA VM of the failed boot, as its incident recorded it when it opened (the timeline's `ha-vms` event):
 * the set the incident restarts and judges its outcome by, never read again from a later inventory.
 */
export const IncidentVmSchema = z.strictObject({
  vmId: IdSchema,
  cpus: z.number().int().positive(),
  memoryMiB: z.number().int().positive(),
  priority: z.enum(['high', 'medium', 'low']),
  antiAffinity: IdSchema.nullable(),
});
export type IncidentVm = z.infer<typeof IncidentVmSchema>;

/** The data of the `ha-vms` timeline event: the failed boot and its HA VMs. */
export const HaSetRecordSchema = z.object({
  bootId: z.string(),
  vms: z.array(IncidentVmSchema),
  /** VMs of `vms` the incident took over as it opened, and the incident each came from (null: none). */
  adopted: z.array(z.object({ vmId: IdSchema, from: z.string().nullable() })).optional(),
});

/** One VM's journey inside a wave: the Map item, enriched as attempts are made. */
export const VmAttemptSchema = z.strictObject({
  ...incidentRef,
  vm: PlannedVmSchema,
  /** Host of the current attempt. */
  targetHostId: IdSchema,
  attempt: z.number().int().positive(),
  triedHosts: z.array(IdSchema),
  reservationId: z.string().optional(),
  /** Attempts this VM gets in this failover (the plan's startAttempts); the policy's when absent. */
  maxAttempts: z.number().int().positive().optional(),
});
export type VmAttempt = z.infer<typeof VmAttemptSchema>;

/** What a relay's start result resolves the StartVm callback task with. */
export const StartResultSchema = z.strictObject({
  commandId: RefSchema,
  vmId: IdSchema,
  hostId: IdSchema,
  finishedAt: epochMs,
});
export type StartResult = z.infer<typeof StartResultSchema>;

/** Every request the state machine sends to the `failover-steps` Lambda. */
export const StepRequestSchema = z.discriminatedUnion('step', [
  z.strictObject({ step: z.literal('suspect'), incident: IncidentInputSchema }),
  z.strictObject({ step: z.literal('confirm-silence'), incident: IncidentInputSchema }),
  z.strictObject({
    step: z.literal('false-alarm'),
    incident: IncidentInputSchema,
    silence: ConfirmSilenceOutputSchema,
  }),
  z.strictObject({ step: z.literal('check-fencing-policy'), incident: IncidentInputSchema }),
  z.strictObject({
    step: z.literal('fencing-suppressed'),
    incident: IncidentInputSchema,
    policy: FencingPolicyOutputSchema,
  }),
  z.strictObject({
    step: z.literal('dispatch-fence'),
    incident: IncidentInputSchema,
    taskToken: z.string().min(1),
  }),
  z.strictObject({
    step: z.literal('verify-power-off'),
    incident: IncidentInputSchema,
    fence: FenceResultSchema,
  }),
  z.strictObject({ step: z.literal('fence-failed'), incident: IncidentInputSchema, error: z.unknown() }),
  z.strictObject({
    step: z.literal('await-operator'),
    incident: IncidentInputSchema,
    taskToken: z.string().min(1),
  }),
  z.strictObject({
    step: z.literal('mark-fenced'),
    incident: IncidentInputSchema,
    confirmation: z.strictObject({ by: z.enum(['ipmi-read-back', 'operator']), detail: z.string() }),
  }),
  z.strictObject({ step: z.literal('operator-timed-out'), incident: IncidentInputSchema }),
  z.strictObject({ step: z.literal('host-rebooted'), incident: IncidentInputSchema }),
  z.strictObject({ step: z.literal('plan-placement'), incident: IncidentInputSchema }),
  z.strictObject({ step: z.literal('reserve-capacity'), attempt: VmAttemptSchema }),
  z.strictObject({
    step: z.literal('dispatch-start'),
    attempt: VmAttemptSchema,
    taskToken: z.string().min(1),
  }),
  z.strictObject({ step: z.literal('vm-started'), attempt: VmAttemptSchema, result: StartResultSchema }),
  z.strictObject({ step: z.literal('release-capacity'), attempt: VmAttemptSchema, error: z.unknown() }),
  z.strictObject({ step: z.literal('pick-next-host'), attempt: VmAttemptSchema }),
  z.strictObject({ step: z.literal('vm-unplaced'), attempt: VmAttemptSchema, error: z.unknown() }),
  z.strictObject({ step: z.literal('start-unconfirmed'), attempt: VmAttemptSchema, error: z.unknown() }),
  z.strictObject({ step: z.literal('close'), incident: IncidentInputSchema, outcome: z.string().optional() }),
]);
export type StepRequest = z.infer<typeof StepRequestSchema>;
export type StepName = StepRequest['step'];

/** Incident outcomes, as the review and the simulator report them. */
export const IncidentOutcomeSchema = z.enum([
  'in-progress',
  'recovered',
  'partially-recovered',
  'false-alarm',
  'fencing-suppressed',
  'awaiting-operator',
]);
export type IncidentOutcome = z.infer<typeof IncidentOutcomeSchema>;
