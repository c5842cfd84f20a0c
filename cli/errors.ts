import { EXIT, type ExitCode } from './format';

/** A failure the CLI explains in one message and ends with its exit code (no stack trace). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCode,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/** Bad usage or input, or a request the control plane refused as such: nothing was done (exit 2). */
export class UsageError extends CliError {
  constructor(message: string) {
    super(message, EXIT.usage);
    this.name = 'UsageError';
  }
}

/** The control plane could not be reached, found, or refused our identity (exit 3). */
export class UnreachableError extends CliError {
  constructor(message: string) {
    super(message, EXIT.unreachable);
    this.name = 'UnreachableError';
  }
}

/**
 * An answer of the operator API other than 2xx, with the API's own `error` code and message. 400, 404,
 * 409 and 415 are about what was asked (exit 2); 401 and 403 about who asked, and 5xx about the control
 * plane (exit 3).
 */
export class ApiError extends CliError {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message, status === 401 || status === 403 || status >= 500 ? EXIT.unreachable : EXIT.usage);
    this.name = 'ApiError';
  }
}
