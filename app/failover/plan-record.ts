import { type PlanOutput, PlanOutputSchema } from '../../contracts/workflow';
import type { IncidentEvent } from '../ports';

/** The plan PlanPlacement stored on the timeline, or null before it ran. */
export function storedPlan(events: readonly IncidentEvent[]): PlanOutput | null {
  const planned = events.find((e) => e.kind === 'placement-planned');
  const parsed = PlanOutputSchema.safeParse(planned?.data?.plan);
  return parsed.success ? parsed.data : null;
}

/** Every VM id the plan placed, in start order. */
export function plannedVmIds(plan: PlanOutput): string[] {
  return plan.waves.flatMap((wave) => wave.vms.map((vm) => vm.vmId));
}
