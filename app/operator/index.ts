/** The operator API's use cases, one per route of contracts/operator-api.ts OPERATOR_ROUTES. */
export { capacityReport, type SiteCapacityReport } from './capacity-report';
export { confirmPowerOff } from './confirm-power-off';
export { setVmDownOnPurpose } from './down-on-purpose';
export { type SiteDowntime, siteDowntime, type VmDowntime, vmDowntime } from './downtime';
export { type EventFeedPage, type FeedEvent, listEventFeed } from './event-feed';
export { type FencingResult, setFencing } from './fencing';
export {
  getIncident,
  type IncidentDetail,
  type IncidentView,
  incidentView,
  listIncidents,
} from './incidents';
export { type HostView, listHosts, listSites, listVms, type VmView, vmMisconfigurations } from './inventory';
export { type MaintenanceResult, setMaintenance } from './maintenance';
export { type ClusterPolicyView, getClusterPolicy, setClusterPolicy } from './policy';
export { listRelays, type RelayView } from './relay-view';
export { type EnrolledRelay, enrollRelay, revokeRelay } from './relays';
export { setVmMetadata, type VmMetadata } from './vm-metadata';
