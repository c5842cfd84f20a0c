import * as z from 'zod';
import { DEFAULT_PLACEMENT_POLICY, PRIORITIES } from '../core/model';

/**
 * Inventory file for the N+1 report (`halo plan`): clusters, their hosts and the VMs each host runs now.
 * The parsed output is shaped exactly like core's `Host`, `Vm` and `PlacementPolicy`, so it feeds
 * `assessCapacity` without any mapping.
 */

type ErrorFn = (issue: { readonly code?: string; readonly input?: unknown }) => string | undefined;

// One phrase per field ("must be …") reads better to an operator than zod's generic type wording.
// Unknown keys fall through (undefined) to be named one by one in formatIssues.
const must =
  (what: string): ErrorFn =>
  (issue) => {
    if (issue.code === 'unrecognized_keys') return undefined;
    return issue.input === undefined ? 'is required' : `must be ${what}`;
  };

const id = z.string({ error: must('a non-empty string') }).min(1, { error: must('a non-empty string') });

const positiveInt = (): z.ZodNumber => {
  const error = must('a positive integer');
  return z.number({ error }).int({ error }).positive({ error });
};

const PRIORITY_LIST = PRIORITIES.map((p) => `"${p}"`).join(', ');

/** A VM as the inventory lists it; `priority` defaults to `medium`, `autostart` (libvirt's) is optional. */
export const InventoryVmSchema = z.strictObject(
  {
    id,
    cpus: positiveInt(),
    memoryMiB: positiveInt(),
    // Required on purpose: whether a VM restarts elsewhere is too important to default silently.
    ha: z.boolean({ error: must('true or false') }),
    priority: z.enum(PRIORITIES, { error: must(`one of ${PRIORITY_LIST}`) }).default('medium'),
    antiAffinity: id.optional(),
    // Optional: libvirt autostart on for the VM on some host. For an HA VM the report warns about it.
    autostart: z.boolean({ error: must('true or false') }).optional(),
  },
  { error: must('an object') },
);

/**
 * A hypervisor host with the VMs it runs now; `maintenance` defaults to false. `fencing` (optional) says
 * whether a relay can fence it, as `GET /v1/sites/{siteId}/hosts` reports it.
 */
export const InventoryHostSchema = z.strictObject(
  {
    id,
    cpus: positiveInt(),
    memoryMiB: positiveInt(),
    maintenance: z.boolean({ error: must('true or false') }).default(false),
    vms: z.array(InventoryVmSchema, { error: must('an array of VMs') }),
    // Optional, as the operator API's host view gives it: absent or null is unknown, which counts as
    // fenceable; `false` makes the host's failover wait for an operator.
    fencing: z
      .strictObject(
        {
          fenceable: z.boolean({ error: must('true, false or null') }).nullable(),
          reason: z
            .string({ error: must('a string or null') })
            .nullable()
            .default(null),
        },
        { error: must('an object') },
      )
      .optional(),
  },
  { error: must('an object') },
);

/** One cluster: the unit N+1 is assessed on. */
export const InventoryClusterSchema = z.strictObject(
  {
    id,
    hosts: z
      .array(InventoryHostSchema, { error: must('an array of hosts') })
      .min(1, { error: must('a non-empty array of hosts') }),
  },
  { error: must('an object') },
);

const overcommitError = must('a number greater than 0 and at most 16');

/** Placement policy; every field defaults to core's conservative default (no overcommit, no reserve). */
export const InventoryPolicySchema = z.strictObject(
  {
    cpuOvercommit: z
      .number({ error: overcommitError })
      .positive({ error: overcommitError })
      .max(16, { error: overcommitError })
      .default(DEFAULT_PLACEMENT_POLICY.cpuOvercommit),
    reserveMiB: z
      .number({ error: must('a non-negative integer') })
      .int({ error: must('a non-negative integer') })
      .nonnegative({ error: must('a non-negative integer') })
      .default(DEFAULT_PLACEMENT_POLICY.reserveMiB),
    reserveCpus: z
      .number({ error: must('a non-negative number') })
      .nonnegative({ error: must('a non-negative number') })
      .default(DEFAULT_PLACEMENT_POLICY.reserveCpus),
  },
  { error: must('an object') },
);

type PathKey = string | number;

/** Renders a zod path the way a reader finds it in the file: `clusters[0].hosts[1].vms[3].memoryMiB`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$]*$/.test(key)) out += out === '' ? key : `.${key}`;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out === '' ? '(top level)' : out;
}

/** The whole inventory file. Host ids are unique per cluster, cluster and VM ids across the file. */
export const InventorySchema = z
  .strictObject(
    {
      policy: InventoryPolicySchema.prefault({}),
      clusters: z
        .array(InventoryClusterSchema, { error: must('an array of clusters') })
        .min(1, { error: must('a non-empty array of clusters') }),
    },
    { error: must('an object') },
  )
  .superRefine((inventory, ctx) => {
    const firstAt = (seen: Map<string, PathKey[]>, key: string, path: PathKey[], what: string): void => {
      const first = seen.get(key);
      if (first === undefined) {
        seen.set(key, path);
        return;
      }
      ctx.addIssue({
        code: 'custom',
        path,
        message: `duplicate ${what} id ${JSON.stringify(key)} (first at ${formatPath(first)})`,
      });
    };
    const clusterIds = new Map<string, PathKey[]>();
    // VM ids must be unique across clusters too: an incident names a VM by id alone.
    const vmIds = new Map<string, PathKey[]>();
    inventory.clusters.forEach((cluster, c) => {
      firstAt(clusterIds, cluster.id, ['clusters', c, 'id'], 'cluster');
      const hostIds = new Map<string, PathKey[]>();
      cluster.hosts.forEach((host, h) => {
        firstAt(hostIds, host.id, ['clusters', c, 'hosts', h, 'id'], 'host');
        host.vms.forEach((vm, v) => {
          firstAt(vmIds, vm.id, ['clusters', c, 'hosts', h, 'vms', v, 'id'], 'VM');
        });
      });
    });
  });

/** A parsed, validated inventory; its hosts, VMs and policy are core's `Host`, `Vm` and `PlacementPolicy`. */
export type Inventory = z.output<typeof InventorySchema>;
/** An inventory as written in the file, before defaults. */
export type InventoryInput = z.input<typeof InventorySchema>;
/** One cluster of a parsed inventory. */
export type InventoryCluster = Inventory['clusters'][number];

/** One problem found in an inventory file. */
export interface InventoryIssue {
  /** Field path such as `clusters[0].hosts[1].vms[3].memoryMiB`, or `(top level)`. */
  readonly path: string;
  readonly message: string;
  /** 1-based, for JSON syntax errors. */
  readonly line?: number;
  readonly column?: number;
}

/** Raised by `parseInventory`; its message names the file and every problem, one per line. */
export class InventoryError extends Error {
  override readonly name = 'InventoryError';
  readonly code = 'invalid-inventory';

  constructor(
    readonly sourceName: string,
    readonly issues: readonly InventoryIssue[],
  ) {
    super(renderIssues(sourceName, issues));
  }
}

// Beyond this, more lines hide the first error (usually the cause) instead of helping.
const MAX_LISTED_ISSUES = 20;

function renderIssues(sourceName: string, issues: readonly InventoryIssue[]): string {
  const lines = issues.slice(0, MAX_LISTED_ISSUES).map((issue) => {
    if (issue.line !== undefined && issue.column !== undefined) {
      return `${sourceName}: invalid JSON at line ${issue.line}, column ${issue.column}: ${issue.message}`;
    }
    return `${sourceName}: ${issue.path}: ${issue.message}`;
  });
  if (issues.length > MAX_LISTED_ISSUES) {
    lines.push(`${sourceName}: … and ${issues.length - MAX_LISTED_ISSUES} more problems`);
  }
  return lines.join('\n');
}

function describeInput(input: unknown): string {
  if (input === null) return 'null';
  if (Array.isArray(input)) return input.length === 0 ? 'an empty array' : 'an array';
  if (typeof input === 'object') return 'an object';
  const text = JSON.stringify(input);
  return text.length > 40 ? `${text.slice(0, 37)}…` : text;
}

function formatIssues(issues: readonly z.core.$ZodIssue[]): InventoryIssue[] {
  const out: InventoryIssue[] = [];
  for (const issue of issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        out.push({ path: formatPath([...issue.path, key]), message: 'unknown field' });
      }
      continue;
    }
    const got =
      issue.code !== 'custom' && issue.input !== undefined ? ` (got ${describeInput(issue.input)})` : '';
    out.push({ path: formatPath(issue.path), message: `${issue.message}${got}` });
  }
  return out;
}

/** 1-based line and column of a UTF-16 offset in `text`. */
function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line += 1;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

class JsonSyntaxAt {
  constructor(readonly offset: number) {}
}

/**
 * Offset of the first JSON syntax error, or null for valid JSON. V8 omits the position from some of its
 * messages ("Unexpected token ']'", "Unexpected end of JSON input"), so the error is located here instead.
 */
function jsonErrorOffset(text: string): number | null {
  let i = 0;
  const fail = (at: number): never => {
    throw new JsonSyntaxAt(at);
  };
  const ch = (): string => text.charAt(i);
  const skipWhitespace = (): void => {
    while (ch() === ' ' || ch() === '\t' || ch() === '\n' || ch() === '\r') i++;
  };
  const expect = (c: string): void => {
    if (ch() !== c) fail(i);
    i++;
  };
  const digits = (): void => {
    if (!/[0-9]/.test(ch())) fail(i);
    while (/[0-9]/.test(ch())) i++;
  };
  const literal = (word: string): void => {
    for (const c of word) expect(c);
  };
  const string = (): void => {
    expect('"');
    for (;;) {
      const c = ch();
      if (c === '' || c.charCodeAt(0) < 0x20) fail(i);
      i++;
      if (c === '"') return;
      if (c === '\\') {
        const e = ch();
        if (e === 'u') {
          i++;
          for (let k = 0; k < 4; k++) {
            if (!/[0-9a-fA-F]/.test(ch())) fail(i);
            i++;
          }
        } else if ('"\\/bfnrt'.includes(e) && e !== '') i++;
        else fail(i);
      }
    }
  };
  const number = (): void => {
    if (ch() === '-') i++;
    if (ch() === '0') i++;
    else digits();
    if (ch() === '.') {
      i++;
      digits();
    }
    if (ch() === 'e' || ch() === 'E') {
      i++;
      if (ch() === '+' || ch() === '-') i++;
      digits();
    }
  };
  // Objects and arrays share one shape: an opening bracket, items separated by commas, the closing one.
  const sequence = (close: string, item: () => void): void => {
    i++;
    skipWhitespace();
    if (ch() === close) {
      i++;
      return;
    }
    for (;;) {
      item();
      skipWhitespace();
      if (ch() !== ',') break;
      i++;
    }
    expect(close);
  };
  const member = (): void => {
    skipWhitespace();
    string();
    skipWhitespace();
    expect(':');
    value();
  };
  const value = (): void => {
    skipWhitespace();
    const c = ch();
    if (c === '{') sequence('}', member);
    else if (c === '[') sequence(']', value);
    else if (c === '"') string();
    else if (c === '-' || /[0-9]/.test(c)) number();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else fail(i);
  };
  try {
    value();
    skipWhitespace();
    if (i < text.length) fail(i);
    return null;
  } catch (e) {
    if (e instanceof JsonSyntaxAt) return e.offset;
    throw e;
  }
}

function jsonSyntaxIssue(text: string, error: unknown): InventoryIssue {
  const raw = error instanceof Error ? error.message : String(error);
  // V8 appends the position and a copy of the input; both are replaced by line and column.
  const message = raw
    .replace(/ in JSON at position \d+.*$/s, '')
    .replace(/, (?:\.\.\.)?".*is not valid JSON$/s, '')
    .trim();
  const v8Offset = /at position (\d+)/.exec(raw)?.[1];
  const offset = v8Offset !== undefined ? Number(v8Offset) : (jsonErrorOffset(text) ?? text.length);
  return { path: '(top level)', message, ...lineColumn(text, offset) };
}

/**
 * Parses and validates an inventory file's text. Throws `InventoryError` naming `sourceName`, the field path
 * of each problem and, for malformed JSON, the line and column.
 */
export function parseInventory(text: string, sourceName: string): Inventory {
  // Editors on Windows may save a byte-order mark, which JSON.parse rejects.
  const body = text.startsWith('\uFEFF') ? text.slice(1) : text;
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (error) {
    throw new InventoryError(sourceName, [jsonSyntaxIssue(body, error)]);
  }
  const result = InventorySchema.safeParse(data, { reportInput: true });
  if (!result.success) throw new InventoryError(sourceName, formatIssues(result.error.issues));
  return result.data;
}
