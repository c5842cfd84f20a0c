import { isNode, LineCounter, parseDocument } from 'yaml';
import type { z } from 'zod';
import { type Scenario, ScenarioSchema } from '../../contracts/scenario';

/** A scenario file that cannot be run: every problem with its field path and line. */
export class ScenarioFileError extends Error {
  override readonly name = 'ScenarioFileError';
  constructor(
    readonly file: string,
    readonly problems: readonly { path: string; line: number | null; message: string }[],
  ) {
    super(
      problems
        .map(
          (p) =>
            `${file}${p.line === null ? '' : `:${p.line}`}: ${p.path === '' ? '' : `${p.path}: `}${p.message}`,
        )
        .join('\n'),
    );
  }
}

function formatPath(path: readonly PropertyKey[]): string {
  return path
    .map((part, i) => (typeof part === 'number' ? `[${part}]` : `${i === 0 ? '' : '.'}${String(part)}`))
    .join('');
}

/**
 * Parses a scenario from JSON or YAML text (JSON is read as YAML 1.2, of which it is a subset, so both
 * get line numbers) and validates it. Throws ScenarioFileError naming each field at fault and its line.
 */
export function parseScenario(text: string, file: string): Scenario {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ScenarioFileError(
      file,
      doc.errors.map((e) => ({
        path: '',
        line: lines.linePos(e.pos[0]).line,
        message: `not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${e.message.split('\n')[0] ?? e.code}`,
      })),
    );
  }
  const result = ScenarioSchema.safeParse(doc.toJS());
  if (result.success) return result.data;
  throw new ScenarioFileError(
    file,
    result.error.issues.map((issue) => problemOf(issue, doc, lines)),
  );
}

function problemOf(
  issue: z.core.$ZodIssue,
  doc: ReturnType<typeof parseDocument>,
  lines: LineCounter,
): { path: string; line: number | null; message: string } {
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys.slice(0, 1)] : issue.path;
  // The deepest node that exists names the line: a missing field is reported at its parent.
  let line: number | null = null;
  for (let depth = issue.path.length; depth >= 0 && line === null; depth--) {
    const node = doc.getIn(issue.path.slice(0, depth) as unknown[], true);
    if (isNode(node) && node.range !== undefined && node.range !== null)
      line = lines.linePos(node.range[0]).line;
  }
  const message = issue.code === 'unrecognized_keys' ? `unknown field` : issue.message;
  return { path: formatPath(path), line, message };
}
