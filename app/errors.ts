/**
 * Named errors of the control plane. Handlers map them to responses in one table; Step Functions
 * Retry/Catch match on `name` (bundles keep class names). Each carries a stable `code` for clients.
 */
export abstract class HaloError extends Error {
  abstract readonly code: string;
  /** HTTP status when the error reaches an API edge. */
  abstract readonly status: number;
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** The request is malformed or breaks a rule of the contract. */
export class ValidationError extends HaloError {
  readonly code = 'invalid-request';
  readonly status = 400;
  constructor(
    message: string,
    readonly issues: readonly { path: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export class UnauthorizedError extends HaloError {
  readonly code = 'unauthorized';
  readonly status = 401;
}

export class BadCredentialError extends HaloError {
  readonly code = 'bad-credential';
  readonly status = 401;
}

export class RelayRevokedError extends HaloError {
  readonly code = 'relay-revoked';
  readonly status = 403;
}

export class UnknownRelayError extends HaloError {
  readonly code = 'unknown-relay';
  readonly status = 403;
}

/** A credential of one site used for another. */
export class WrongSiteError extends HaloError {
  readonly code = 'wrong-site';
  readonly status = 403;
}

export class NotFoundError extends HaloError {
  readonly code = 'not-found';
  readonly status = 404;
}

export class RelayExistsError extends HaloError {
  readonly code = 'relay-exists';
  readonly status = 409;
}

/** A report whose seq is not above the last accepted one: a replay or a reordered delivery. */
export class StaleSequenceError extends HaloError {
  readonly code = 'stale-sequence';
  readonly status = 409;
}

/** An optimistic-lock write lost a race; the caller re-reads and retries or gives up. */
export class ConcurrentUpdateError extends HaloError {
  readonly code = 'concurrent-update';
  readonly status = 409;
}

/** A state change the lifecycle does not allow now (e.g. confirming off a host that is up). */
export class ConflictError extends HaloError {
  readonly code = 'conflict';
  readonly status = 409;
}

export class ClockSkewError extends HaloError {
  readonly code = 'clock-skew';
  readonly status = 400;
}

export class PayloadTooLargeError extends HaloError {
  readonly code = 'payload-too-large';
  readonly status = 413;
}

// Workflow errors: names match contracts/workflow.ts WORKFLOW_ERROR.

export class FenceNotConfirmedError extends HaloError {
  readonly code = 'fence-not-confirmed';
  readonly status = 409;
}

export class FenceDeadlinePassedError extends HaloError {
  readonly code = 'fence-deadline-passed';
  readonly status = 409;
}

export class NoRelayAvailableError extends HaloError {
  readonly code = 'no-relay-available';
  readonly status = 409;
}

export class VmStartFailedError extends HaloError {
  readonly code = 'vm-start-failed';
  readonly status = 409;
}

export class NoCapacityError extends HaloError {
  readonly code = 'no-capacity';
  readonly status = 409;
}

/** The VM was taken over by the incident of the host its start went to, which fell silent (adopt.ts). */
export class VmHandedOverError extends HaloError {
  readonly code = 'vm-handed-over';
  readonly status = 409;
}

export class StartAttemptsExhaustedError extends HaloError {
  readonly code = 'start-attempts-exhausted';
  readonly status = 409;
}

export class IncidentSupersededError extends HaloError {
  readonly code = 'incident-superseded';
  readonly status = 409;
}

/** The incident's host is heard in a new boot: its failover restarts the old boot's VMs without a fence. */
export class HostRebootedError extends HaloError {
  readonly code = 'host-rebooted';
  readonly status = 409;
}
