/** The operator API's use cases, one per route of contracts/operator-api.ts OPERATOR_ROUTES. */
export { capacityReport, type SiteCapacityReport } from './capacity-report';
export { confirmPowerOff } from './confirm-power-off';
export { setVmDownOnPurpose } from './down-on-purpose';
export { type FencingResult, setFencing } from './fencing';
export { getIncident, type IncidentView, listIncidents } from './incidents';
export { type HostView, listHosts, listSites, listVms, type VmView, vmMisconfigurations } from './inventory';
export { type MaintenanceResult, setMaintenance } from './maintenance';
export { type EnrolledRelay, enrollRelay, revokeRelay } from './relays';
export { setVmMetadata, type VmMetadata } from './vm-metadata';
